"""The load balancer routes around a stopped or reloading backend (tests run on lb13)."""

from __future__ import annotations

import pytest
from conftest import load, served_by

testinfra_hosts = ["ansible://lb13"]

BACKENDS = {"gunicorn": ("app-gunicorn", "gunicorn-demo"), "uwsgi": ("app-uwsgi", "uwsgi-demo")}


@pytest.mark.parametrize("stopped", BACKENDS)
def test_gets_still_answer_200_with_one_backend_stopped(host, instances, stopped):
    backend, unit = BACKENDS[stopped]
    instances[backend].check_output(f"systemctl stop {unit}")
    try:
        answers = served_by(host, "http://127.0.0.1/", 30)
    finally:
        instances[backend].check_output(f"systemctl start {unit}")
    survivor = ({"gunicorn", "uwsgi"} - {stopped}).pop()
    assert set(answers) == {survivor}, answers


@pytest.mark.parametrize("reloaded", BACKENDS)
def test_a_backend_reload_under_load_through_the_lb_loses_no_request(host, instances, reloaded):
    """Gunicorn: HUP; uWSGI: chain reload. On the demo site, a request a retiring worker
    drops is sent to the other backend."""
    backend, unit = BACKENDS[reloaded]
    instances[backend].check_output(f"(sleep 1.5; systemctl reload {unit}) >/dev/null 2>&1 &")
    result = load(host, port=80, concurrency=16, seconds=5)
    print(f"{reloaded} reload under load through the LB: {result}")
    # every client answered (no request rate asserted: a busy machine slows the reload)
    assert result["ok"] >= 16, result
    assert result["failed"] == 0, result
