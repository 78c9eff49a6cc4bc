"""The drills' thresholds: a drill run with limits exits non-zero naming what it missed."""

from __future__ import annotations

from webtier.ops import drills


def page_loads(sent=6400, failed=0, max_ms=250):
    return {
        "drill": "rolling",
        "load": {"sent": sent, "failed": failed, "seconds": 20, "max_ms": max_ms},
        "action": {},
    }


def test_a_drill_within_its_thresholds_misses_none():
    assert drills.missed(page_loads(), max_error_rate=0.0, min_rps=300, max_latency_ms=500) == []


def test_each_threshold_a_drill_misses_is_named():
    result = page_loads(sent=6400, failed=64, max_ms=1200)
    assert drills.missed(result, max_error_rate=0.001, min_rps=400, max_latency_ms=1000) == [
        "rolling: 64 of 6400 failed (1.00%) > 0.10%",
        "rolling: 317 answered/s < 400",
        "rolling: slowest 1,200 ms > 1,000 ms",
    ]


def test_a_job_drill_is_held_to_the_jobs_it_lost():
    result = {"drill": "worker-kill", "action": {"sent": 40, "lost": 2}}
    assert drills.missed(result, max_error_rate=0.0) == ["worker-kill: 2 of 40 jobs lost > 0.00%"]
    assert drills.missed({**result, "action": {"sent": 40, "lost": 0}}, max_error_rate=0.0) == []


def test_the_drills_cast_is_read_from_the_inventory():
    """Who each drill acts on comes from the environment's inventory, not the sandbox's
    host names: a Gunicorn host behind the first load balancer's site, every app host's
    unit, the configured Redis primary first, the Django demo's hosts and its /db."""
    sandbox = drills.Cast.read("inventory/sandbox")
    assert (sandbox.lb, sandbox.url, sandbox.app) == ("lb1", "http://lb1/", "app1")
    assert sandbox.containers["app1"] == "webtier-sandbox-app1"
    assert sandbox.units["app2"] == "uwsgi-demo"
    assert sandbox.units["app5"] == "gunicorn-notes"
    assert (sandbox.worker, sandbox.worker_unit) == ("worker1", "celery-demo-work")
    assert sandbox.redis[0] == "redis1"
    assert (sandbox.django, sandbox.django_url, sandbox.db) == (
        ("app5", "app6"),
        "http://lb2/db",
        "db1",
    )
    assert (sandbox.db_set, sandbox.db_monitor) == (("db1", "db2"), "dbmon1")
    assert sandbox.outside == "http://127.0.0.1:8080"

    staging = drills.Cast.read("inventory/staging")
    domain = "staging.example.internal"
    assert staging.lb == f"lb1.{domain}"
    assert staging.app in staging.units
    assert staging.units[staging.app].startswith("gunicorn-")
    assert staging.django == (f"app4.{domain}",)
    assert staging.django_url == f"http://lb1.{domain}/db"  # one load balancer for every site
    assert staging.redis == (f"redis1.{domain}",)
    assert (staging.db_set, staging.db_monitor) == (
        (f"db1.{domain}", f"db2.{domain}"),
        f"dbmon1.{domain}",
    )
    # one database server, no set: the database drills refuse with the reason
    single = drills.Cast.read("tests/inventories/defaults")
    assert single.db_set == ()
    assert single.db_monitor is None
