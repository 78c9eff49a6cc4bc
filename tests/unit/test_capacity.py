"""The capacity model counts concurrency the way each server really behaves."""

from __future__ import annotations

import pytest

from webtier import ROOT
from webtier.model import capacity

GROUPS = {
    "all": ["lb1", "app1", "redis1"],
    "loadbalancers": ["lb1"],
    "app_gunicorn": ["app1"],
    "redis": ["redis1"],
}


def app(**variables):
    return capacity.model({"app1": {"webtier_cpus": 2, **variables}}, GROUPS).tier("app")[0]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"gunicorn_worker_class": "sync", "gunicorn_workers": 4}, 4),
        ({"gunicorn_worker_class": "sync"}, 5),  # auto: 2 x CPUs + 1
        ({"gunicorn_worker_class": "gthread", "gunicorn_workers": 3, "gunicorn_threads": 8}, 24),
        ({"gunicorn_worker_class": "gthread"}, 16),  # auto: 2 x CPUs workers x 4 threads
        # The sizing notes' own figure: 4 gevent workers x 2048 = 8192.
        (
            {
                "gunicorn_worker_class": "gevent",
                "gunicorn_workers": 4,
                "gunicorn_worker_connections": 2048,
            },
            8192,
        ),
        ({"gunicorn_worker_class": "asgi", "gunicorn_workers": 2}, 2000),
    ],
)
def test_gunicorn_concurrency_by_worker_class(variables, expected):
    assert app(**variables).concurrency == expected


def test_uwsgi_is_processes_times_threads():
    model = capacity.model(
        {"app2": {"uwsgi_processes": 3, "uwsgi_threads": 4}},
        {"all": ["app2"], "app_uwsgi": ["app2"]},
    )
    assert model.tier("app")[0].concurrency == 12


def test_nginx_is_halved_when_proxying_and_capped_by_descriptors():
    lb = capacity.model(
        {"lb1": {"nginx_worker_processes": 4, "nginx_worker_connections": 2048}}, GROUPS
    ).tier("lb")[0]
    assert lb.concurrency == 4 * 2048 // 2
    capped = capacity.model(
        {
            "lb1": {
                "nginx_worker_processes": 2,
                "nginx_worker_connections": 8192,
                "kernel_tuning_nofile": 4096,
            }
        },
        GROUPS,
    )
    assert capped.tier("lb")[0].limit == 2 * (4096 - 64) // 2
    assert any("nginx_worker_rlimit_nofile=16384" in str(f) for f in capped.findings)


def test_accept_queue_is_cut_to_somaxconn():
    found = app(gunicorn_backlog=8192, kernel_tuning_somaxconn=1024)
    assert found.queue == 1024


def test_bottleneck_and_littles_law():
    model = capacity.model(
        {
            "lb1": {"nginx_worker_processes": 2, "nginx_worker_connections": 4096},
            "app1": {
                "gunicorn_worker_class": "gthread",
                "gunicorn_workers": 3,
                "gunicorn_threads": 4,
                "gunicorn_backlog": 4096,
                "gunicorn_worker_connections": 4096,
            },
            "redis1": {},
        },
        GROUPS,
    )
    assert model.bottleneck == "app"
    assert model.stack_concurrency == 12
    assert model.qps(0.02) == pytest.approx(600)
    assert model.findings == []
    text = capacity.table(model, 0.02)
    assert "Bottleneck: the **app** tier, 12 requests at once." in text
    assert "600/s" in text


def test_app_queues_must_hold_what_the_load_balancer_sends():
    model = capacity.model(
        {
            "lb1": {
                "nginx_worker_processes": 2,
                "nginx_worker_connections": 16384,
                "nginx_worker_rlimit_nofile": 16448,
            },
            "app1": {
                "gunicorn_workers": 3,
                "gunicorn_threads": 4,
                "gunicorn_backlog": 4096,
                "gunicorn_worker_connections": 16384,
            },
            "redis1": {},
        },
        GROUPS,
    )
    (finding,) = model.findings
    assert finding.host == "app1"
    assert finding.variable == "gunicorn_backlog"
    assert "16384 proxied connections" in finding.limit
    assert "to 16372" in finding.fix  # 16384 - 12 in flight


def test_gthread_workers_must_hold_their_share_of_proxied_connections():
    """A full gthread worker stops reading its sockets: found in this stack's own load test."""
    model = capacity.model(
        {
            "lb1": {
                "nginx_worker_processes": 2,
                "nginx_worker_connections": 16384,
                "nginx_worker_rlimit_nofile": 16448,
            },
            "app1": {"gunicorn_workers": 4, "gunicorn_backlog": 16384},
            "redis1": {},
        },
        GROUPS,
    )
    (finding,) = model.findings
    assert finding.variable == "gunicorn_worker_connections"
    assert finding.value == 1000
    assert "which one worker may accept alone" in finding.limit
    assert finding.fix == "raise gunicorn_worker_connections to 16384"


@pytest.mark.parametrize("env", ["sandbox", "staging", "production"])
def test_every_environment_is_consistent(env):
    model = capacity.from_inventory(str(ROOT / "inventory" / env))
    assert model.findings == [], model.findings
    assert model.bottleneck in {"lb", "app"}


def test_the_capacity_table_predicts_from_the_inventorys_cpu_calibration():
    demand = {"/": {"hosts_us": {"lb1": 100.0, "app1": 300.0}, "delay_us": 500.0}}
    hostvars = {
        "lb1": {"webtier_cpu_pool": "box", "webtier_cpu_demand": demand},
        "app1": {"webtier_cpu_pool": "box", "webtier_cpu_demand": demand},
    }
    predictions = capacity.cpu_predictions(hostvars)
    assert list(predictions) == ["/"]
    # Two cores shared by both hosts, 400 us a request: 5,000/s at most.
    assert predictions["/"]["ceiling_rps"] == 5000.0
    text = capacity.prediction_table(predictions)
    assert "ceiling 5,000 req/s, pool box" in text
    assert "| connections | 64 | 128 | 256 | 512 | 1,024 | 2,048 | 4,096 | 8,192 |" in text
    assert "No CPU calibration" in capacity.prediction_table(capacity.cpu_predictions({"lb1": {}}))
