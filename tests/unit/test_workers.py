"""The worker tier (celery_worker): its units and launcher as rendered, its sizes, its
place in the capacity model, the broker rules and the firewall."""

from __future__ import annotations

import sys
import types

import pytest
import yaml

from webtier import ROOT
from webtier.checks import invariants
from webtier.files import firewall
from webtier.files.render import render
from webtier.model import capacity, derive

ROLE = ROOT / "roles/celery_worker"
DEFAULTS = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
GROUPS = {
    "all": ["app1", "worker1", "redis1"],
    "appservers": ["app1"],
    "app_gunicorn": ["app1"],
    "workers": ["worker1"],
    "redis": ["redis1"],
}
WORKER = {
    "python_app_name": "demo",
    "python_app_redis_group": "redis",
    "celery_worker_app": "webtier_demo_flask.tasks:celery",
}


def values(**over) -> dict:
    v = {
        **DEFAULTS,
        **yaml.safe_load((ROLE / "vars/main.yml").read_text()),
        **WORKER,
        "python_app_user": "demo",
        "python_app_root": "/srv/demo",
        **over,
    }
    v["__celery_worker_queues"] = derive.celery_queues(v["celery_worker_queues"], 4)
    v["__celery_worker_stop_timeout"] = derive.stop_timeout(
        v["celery_worker_time_limit"], derive.CELERY_STOP_MARGIN
    )
    return v


def test_auto_concurrency_is_one_process_per_cpu():
    queues = [{"name": "a"}, {"name": "b", "concurrency": "auto"}, {"name": "c", "concurrency": 3}]
    assert [q["concurrency"] for q in derive.celery_queues(queues, 4)] == [4, 4, 3]


def test_the_unit_drains_on_stop_and_yields_cpu():
    v = values(celery_worker_time_limit=120, celery_worker_cpu_weight=20)
    unit = render(
        "etc/systemd/system/celery.service.j2", {**v, "queue": v["__celery_worker_queues"][0]}
    )
    lines = unit.splitlines()
    # TERM to the main process only (a warm shutdown), for as long as a task may run
    assert "KillMode=mixed" in lines
    assert "KillSignal=SIGTERM" in lines
    assert "TimeoutStopSec=150" in lines
    assert "Restart=always" in lines
    assert "CPUWeight=20" in lines
    (start,) = [line for line in lines if line.startswith("ExecStart=")]
    assert "--queues celery --hostname celery@%H --concurrency 4" in start
    assert start.startswith(
        "ExecStart=/srv/demo/current/venv/bin/celery --app webtier_celery worker"
    )


def test_the_launcher_applies_the_roles_settings_over_the_apps(monkeypatch):
    """The rendered launcher, run against a stand-in for the app's Celery instance: the
    app's own transport options are kept, the role's settings win."""
    v = values(celery_worker_max_tasks_per_child=0, celery_worker_visibility_timeout=400)
    source = render("srv/app/webtier_celery.py.j2", v)

    class Conf(dict):
        def __getattr__(self, name):
            return self.get(name)

        def update(self, *args, **kwargs):
            super().update(*args, **kwargs)

    app = types.SimpleNamespace(conf=Conf(broker_transport_options={"master_name": "webtier"}))
    package = types.ModuleType("webtier_demo_flask")
    module = types.ModuleType("webtier_demo_flask.tasks")
    module.celery = app
    monkeypatch.setitem(sys.modules, "webtier_demo_flask", package)
    monkeypatch.setitem(sys.modules, "webtier_demo_flask.tasks", module)
    namespace: dict = {"__name__": "webtier_celery"}
    exec(compile(source, "webtier_celery.py", "exec"), namespace)
    conf = app.conf
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["worker_max_tasks_per_child"] is None  # 0: never replaced
    assert (conf["task_soft_time_limit"], conf["task_time_limit"]) == (60, 90)
    assert conf["broker_transport_options"] == {"master_name": "webtier", "visibility_timeout": 400}
    assert namespace["QUEUES"] == ["celery"]


def test_a_queue_is_served_at_its_cpus_over_the_task_time():
    hostvars = {
        "worker1": {
            **WORKER,
            "webtier_cpus": 2,
            "celery_worker_queues": [
                {"name": "work", "concurrency": 4, "task_seconds": 0.05},
                {"name": "mail"},
            ],
        },
    }
    m = capacity.model(hostvars, {"all": ["worker1"], "workers": ["worker1"]})
    (worker,) = m.tier("worker")
    work, mail = worker.queues
    # 4 processes on 2 CPUs serve CPU-bound tasks at 2 / 0.05 s
    assert work["served_per_s"] == pytest.approx(40.0)
    assert mail["processes"] == 2
    assert mail["served_per_s"] is None
    text = capacity.table(m, arrival_per_s=50)
    assert (
        "| worker1 | work | 4 | 2 CPUs | 50 ms | 40.0 | grows by 10.0 tasks/s (600 a minute) |"
        in text
    )
    assert "drains at 10.0 tasks/s" in capacity.queue_growth(40, 30)


def test_redis_must_take_the_workers_connections_too():
    hostvars = {
        "worker1": {**WORKER, "webtier_cpus": 8},
        "redis1": {
            "redis_maxclients": 10,
            "redis_app_users": [{"name": "demo", "password": "a"}],
            "redis_admin_password": "b",
        },
    }
    m = capacity.model(
        hostvars, {"all": list(hostvars), "workers": ["worker1"], "redis": ["redis1"]}
    )
    [finding] = [f for f in m.findings if f.variable == "redis_maxclients"]
    assert "the 16 clients" in finding.limit  # 8 processes x broker and result store


def test_a_cache_profile_broker_is_refused_and_a_store_accepted():
    cache = {"redis1": {"redis_profile": "cache"}, "worker1": WORKER}
    [finding] = invariants.broker("worker1", WORKER, cache, GROUPS)
    assert "redis1 runs redis_profile cache" in finding.limit
    assert "redis_profile: store" in finding.fix
    store = {"redis1": {"redis_profile": "store"}, "worker1": WORKER}
    assert invariants.broker("worker1", WORKER, store, GROUPS) == []
    evicting = {
        "redis1": {
            "redis_profile": "store",
            "redis_extra_config": {"maxmemory-policy": "allkeys-lru"},
        }
    }
    [finding] = invariants.broker("worker1", WORKER, {**store, **evicting}, GROUPS)
    assert "maxmemory-policy allkeys-lru" in finding.limit


def test_a_worker_host_is_not_an_app_server_too():
    groups = {**GROUPS, "appservers": ["app1", "worker1"]}
    store = {"redis1": {"redis_profile": "store"}, "worker1": WORKER}
    [finding] = invariants.broker("worker1", WORKER, store, groups)
    assert finding.variable == "workers"


def test_redis_admits_the_workers_and_a_worker_admits_nothing_but_ssh():
    hostvars = {name: {"webtier_app_server": "gunicorn"} for name in GROUPS["all"]}
    assert firewall.sources("redis1", GROUPS, hostvars) == ["app1", "worker1"]
    assert firewall.sources("worker1", GROUPS, hostvars) == []
    assert firewall.plan("worker1", GROUPS, hostvars) == []
