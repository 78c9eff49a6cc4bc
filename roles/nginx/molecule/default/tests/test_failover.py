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


def test_gunicorn_hup_under_load_through_the_lb_loses_no_request(host, instances):
    # The demo site: a request a retiring worker drops is sent to the other backend.
    backend = instances["app-gunicorn"]
    backend.check_output("(sleep 1.5; systemctl reload gunicorn-demo) >/dev/null 2>&1 &")
    result = load(host, port=80, concurrency=16, seconds=5)
    print(f"Gunicorn HUP under load through the LB: {result}")
    assert result["sent"] > 500, result
    assert result["failed"] == 0, result


def test_uwsgi_chain_reload_under_load_through_the_lb_loses_no_request(host, instances):
    backend = instances["app-uwsgi"]
    backend.check_output("(sleep 1.5; systemctl reload uwsgi-demo) >/dev/null 2>&1 &")
    result = load(host, port=80, concurrency=16, seconds=5)
    print(f"uWSGI chain reload under load through the LB: {result}")
    assert result["sent"] > 500, result
    assert result["failed"] == 0, result
