"""Invalid input and an app reference that does not load fail before the live workers change."""

from __future__ import annotations

import pytest
from conftest import main_pid
from scenario import assert_refused_before_any_change

CASES = {
    "visibility timeout below the time limit": (
        {"celery_worker_visibility_timeout": 10},
        "celery_worker_visibility_timeout=10 breaks longer than celery_worker_time_limit=45",
    ),
    "soft limit above the hard one": (
        {"celery_worker_soft_time_limit": 50},
        "celery_worker_soft_time_limit=50 breaks below celery_worker_time_limit=45",
    ),
}


def fingerprint(instances) -> dict:
    return {
        name: (h.check_output("sha256sum /srv/demo/current/webtier_celery.py"), main_pid(h))
        for name, h in instances.items()
    }


@pytest.mark.parametrize(("extra", "message"), CASES.values(), ids=CASES.keys())
def test_invalid_input_fails_naming_the_variable(run_playbook, instances, extra, message):
    assert_refused_before_any_change(
        run_playbook, "worker_only.yml", extra, message, lambda: fingerprint(instances)
    )


def test_an_app_reference_that_does_not_load_is_refused_and_the_live_one_kept(
    run_playbook, instances
):
    before = fingerprint(instances)
    rc, out = run_playbook(
        "worker_only.yml",
        "--limit",
        "celery-debian13",
        "-e",
        "celery_worker_app=webtier_demo_flask.tasks:missing",
    )
    assert rc != 0
    assert "missing" in out, out[-3000:]
    assert fingerprint(instances) == before
