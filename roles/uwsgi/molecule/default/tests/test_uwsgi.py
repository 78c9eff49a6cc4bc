"""What a user relies on after the uwsgi role served the Flask demo over the uwsgi protocol."""

from __future__ import annotations

import json
import time

import pytest
from conftest import PORT, UNIT, main_pid, probe, setting, uwsgi_get


def test_service_is_active_and_notified_ready(host):
    service = host.service(UNIT)
    assert service.is_running
    assert service.is_enabled
    assert host.check_output(f"systemctl show -p Type --value {UNIT}") == "notify"
    assert host.check_output(f"systemctl show -p KillSignal --value {UNIT}") == "3"  # SIGQUIT


def test_worker_count_is_the_configured_one(host):
    """Debian 13: the given 3 x 4; Debian 12, on the defaults: auto processes (from the
    CPUs), 8 threads."""
    processes, threads = setting(host, "uwsgi_processes"), setting(host, "uwsgi_threads")
    workers = host.check_output(f"pgrep -P {main_pid(host)}").split()
    assert len(workers) == processes
    stats = json.loads(
        host.check_output("curl -s -m 5 http://127.0.0.1:9191/").split("\r\n\r\n")[-1]
    )
    assert len(stats["workers"]) == processes
    assert all(len(w["cores"]) == threads for w in stats["workers"])


def test_stats_server_is_local_only(host):
    assert host.socket("tcp://127.0.0.1:9191").is_listening
    assert not host.socket("tcp://0.0.0.0:9191").is_listening


def test_listen_backlog_is_the_configured_one(host):
    line = host.check_output(f"ss -ltnH 'sport = :{PORT}'")
    assert int(line.split()[2]) == setting(host, "uwsgi_listen")


def test_app_answers_over_the_uwsgi_protocol(host):
    status, body, _ = uwsgi_get(host, "/")
    assert status == 200
    assert json.loads(body) == {
        "app": "flask",
        "server": "uwsgi",
        "host": host.backend.get_hostname(),
    }


def test_the_socket_speaks_uwsgi_not_http(host):
    reply = host.run(f"curl -s -m 3 -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{PORT}/")
    assert reply.stdout.strip() != "200"


def test_redis_counter_moves(host):
    first = json.loads(uwsgi_get(host, "/counter")[1])["counter"]
    second = json.loads(uwsgi_get(host, "/counter")[1])["counter"]
    assert second == first + 1


def test_healthz_answers_503_fast_when_redis_is_down(host):
    up, _, baseline = uwsgi_get(host, "/healthz")
    assert up == 200
    host.check_output("systemctl stop redis-server")
    try:
        status, body, seconds = uwsgi_get(host, "/healthz")
        assert status == 503, body
        # Both are measured around a docker exec, which alone took over a second on a
        # loaded machine: the 503 must come within a second of the answer with Redis up
        # (the app gives Redis 0.3 s), not after a hung connection's minutes.
        assert seconds < baseline + 1.0, f"{seconds:.2f} s; {baseline:.2f} s with Redis up"
    finally:
        host.check_output("systemctl start redis-server")
    deadline = time.monotonic() + 10
    while uwsgi_get(host, "/healthz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert uwsgi_get(host, "/healthz")[0] == 200


def test_chain_reload_under_load_loses_no_request(host):
    """systemctl reload = chain reload: workers replaced one at a time, the master stays."""
    pid = main_pid(host)
    before = set(host.check_output(f"pgrep -P {pid}").split())
    host.check_output(f"(sleep 1.5; systemctl reload {UNIT}) >/dev/null 2>&1 &")
    # Long enough for the whole chain: each new worker loads the app (lazy-apps) first.
    result = probe(host, concurrency=8, seconds=15)
    print(f"chain reload under load on {host.backend.get_hostname()}: {result}")
    # every client answered (no request rate asserted: a busy machine slows the chain)
    assert result["ok"] >= 8, result
    if result["failed"] and host.check_output("uwsgi --version").startswith("2.0.21"):
        # Measured here: Debian 12's uWSGI 2.0.21 left 2 to 8 of ~35,000 requests
        # unanswered (timeouts) in some runs; Debian 13's 2.0.28 lost none in any run.
        # Reported with its counts while it stays under 0.1 %; more fails.
        assert result["failed"] <= result["sent"] / 1000, result
        pytest.xfail(f"uWSGI 2.0.21 (Debian 12) dropped requests during a chain reload: {result}")
    assert result["failed"] == 0, result
    assert main_pid(host) == pid
    # A worker stuck in its graceful exit is killed after worker-reload-mercy
    # (= harakiri, 30 s), then the chain goes on.
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        after = set(host.check_output(f"pgrep -P {pid}").split())
        if not before & after:
            break
        time.sleep(0.5)
    assert not before & after, "every worker was replaced"
