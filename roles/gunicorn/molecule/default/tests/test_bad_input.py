"""Invalid input and an app that does not import fail before the live service changes."""

from __future__ import annotations

import pytest
from conftest import VARS
from scenario import assert_refused_before_any_change

# Cases on the real hosts, proving nothing changes before the check passes; the
# role's other rules are judged by tests/engines/test_live_check.py (webtier.checks.live).
CASES = {
    "backlog above somaxconn": (
        {"gunicorn_backlog": 60000},
        "gunicorn_backlog=60000 breaks net.core.somaxconn=",
    ),
    "zero workers": (
        {"gunicorn_workers": 0},
        "gunicorn_workers=0 breaks the gunicorn role's model: a count must be an int >= 1",
    ),
}


def fingerprint(instances) -> dict:
    return {
        name: h.check_output(
            "sha256sum /etc/gunicorn/demo.conf.py; systemctl show -p MainPID --value gunicorn-demo"
        )
        for name, h in instances.items()
    }


@pytest.mark.parametrize(("extra", "message"), CASES.values(), ids=CASES.keys())
def test_invalid_input_fails_naming_the_variable(run_playbook, instances, extra, message):
    assert_refused_before_any_change(
        run_playbook, "gunicorn_only.yml", extra, message, lambda: fingerprint(instances)
    )


def test_app_that_does_not_import_is_refused_by_check_config(run_playbook, instances):
    before = fingerprint(instances)
    rc, out = run_playbook(
        "gunicorn_only.yml",
        "--limit",
        "flask-gthread-debian13",
        "-e",
        "python_app_entrypoint=webtier_demo_flask:missing",
    )
    assert rc != 0
    assert "Failed to find attribute 'missing'" in out, out[-3000:]
    assert fingerprint(instances) == before


def test_a_new_backlog_reaches_the_kernel(run_playbook, instances):
    """A HUP keeps the arbiter's listening socket, so a new gunicorn_backlog alone would
    never reach the kernel (the load test found a 4096 queue configured as 8192): the
    role compares the live queue with the setting and restarts when they differ."""
    name = "flask-gthread-debian13"
    live = "ss -Hltn 'sport = :8000'"
    try:
        rc, out = run_playbook("gunicorn_only.yml", "--limit", name, "-e", "gunicorn_backlog=2048")
        assert rc == 0, out[-3000:]
        assert int(instances[name].check_output(live).split()[2]) == 2048
    finally:
        rc, out = run_playbook("gunicorn_only.yml", "--limit", name)
    assert rc == 0, out[-3000:]
    assert int(instances[name].check_output(live).split()[2]) == VARS["gunicorn_backlog"]
