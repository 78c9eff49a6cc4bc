"""Invalid input fails before any change; a config nginx refuses never goes live."""

from __future__ import annotations

import pytest
from conftest import curl, fingerprint
from scenario import assert_refused_before_any_change

testinfra_hosts = ["ansible://lb13"]

# Cases on the real hosts, proving nothing changes before the check passes; the
# role's other rules are judged by tests/engines/test_live_check.py (webtier.checks.live).
CASES = {
    "backlog above somaxconn": (
        {"nginx_listen_backlog": 8192},
        "nginx_listen_backlog=8192 breaks net.core.somaxconn=4096",
    ),
    "upstream with no servers": (
        {"nginx_upstreams": [{"name": "demo_gunicorn", "group": "no_such_group"}]},
        "nginx_upstreams[0] (demo_gunicorn): no servers to balance to",
    ),
    "location naming an unknown upstream": (
        {
            "nginx_sites": [
                {"name": "demo", "locations": [{"path": "/", "upstream": "demo_fastapi"}]}
            ]
        },
        "nginx_sites[0].locations[0].upstream: ['demo_fastapi'] not in nginx_upstreams",
    ),
}


@pytest.mark.parametrize(("extra", "message"), CASES.values(), ids=CASES.keys())
def test_invalid_input_fails_naming_the_variable(run_playbook, load_balancers, extra, message):
    assert_refused_before_any_change(
        run_playbook, "nginx_only.yml", extra, message, lambda: fingerprint(load_balancers)
    )


def test_a_value_nginx_refuses_never_goes_live(host, run_playbook, load_balancers):
    """A value of the right form that nginx still refuses passes the role's checks but
    not nginx -t (one proxy buffer: nginx wants two or more): nothing changes."""
    before = fingerprint(load_balancers)
    rc, out = run_playbook("nginx_only.yml", "-e", "nginx_proxy_buffers='1 16k'")
    assert rc != 0
    # nginx's own message, from the check of the candidate tree.
    assert 'there must be at least 2 "proxy_buffers"' in out, out[-3000:]
    assert fingerprint(load_balancers) == before
    status, _, _ = curl(host, "http://127.0.0.1:8088/")
    assert status == 200
    # The next run with good input puts the good configuration back in the candidate.
    rc, out = run_playbook("nginx_only.yml")
    assert rc == 0, out[-3000:]
    assert fingerprint(load_balancers) == before
