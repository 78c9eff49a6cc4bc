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
