"""Invalid input and an app that does not load fail before the live service changes."""

from __future__ import annotations

import pytest
from scenario import assert_refused_before_any_change

# Cases on the real hosts, proving nothing changes before the check passes; the
# role's other rules are judged by tests/engines/test_live_check.py (webtier.checks.live).
CASES = {
    "listen above somaxconn": (
        {"uwsgi_listen": 8192},
        "uwsgi_listen=8192 breaks net.core.somaxconn=4096",
    ),
    "ASGI app": (
        {
            "python_app_interface": "asgi",
            "python_app_entrypoint": "webtier_demo_fastapi:create_app()",
        },
        "uWSGI serves WSGI apps only",
    ),
}


def fingerprint(instances) -> dict:
    command = (
        "sha256sum /etc/uwsgi/webtier/demo.ini /srv/demo/current/webtier_wsgi.py;"
        " systemctl show -p MainPID --value uwsgi-demo"
    )
    return {name: h.check_output(command) for name, h in instances.items()}


@pytest.mark.parametrize(("extra", "message"), CASES.values(), ids=CASES.keys())
def test_invalid_input_fails_naming_the_variable(run_playbook, instances, extra, message):
    assert_refused_before_any_change(
        run_playbook, "uwsgi_only.yml", extra, message, lambda: fingerprint(instances)
    )


def test_app_that_does_not_load_is_refused_and_the_live_one_kept(run_playbook, instances):
    before = fingerprint(instances)
    rc, out = run_playbook(
        "uwsgi_only.yml",
        "--limit",
        "uwsgi-debian13",
        "-e",
        "python_app_entrypoint=webtier_demo_flask:missing",
    )
    assert rc != 0
    assert "missing" in out, out[-3000:]
    assert fingerprint(instances) == before
