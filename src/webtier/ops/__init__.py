"""The operations tooling, beside the provisioning path and never on it: the load test,
the failure drills, the queue, WebSocket and ASGI benches, wrk, the CPU probe. Nothing
outside this package imports it (tests/unit/test_layers.py); playbooks/loadtest.yml
runs it."""
