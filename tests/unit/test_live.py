"""The checks a role runs on a host before it changes it (webtier.checks.live): the model, then
what the host really grants. Both engines call check(); these are its rules."""

from __future__ import annotations

import pytest

#: A Debian 13 host whose kernel grants what the defaults ask for.
from webtier.checks import live
from webtier.model import capacity

#: A Debian 13 host whose kernel grants what the defaults ask for.
ROOMY = live.HostFacts(capacity.Kernel(65535, 65535, 1048576, 4), "trixie", 1)
#: A container that could not raise its limits: Debian's defaults.
TIGHT = live.HostFacts(capacity.Kernel(4096, 4096, 16384, 2), "bookworm", 0, in_container=True)
PASSWORDS = {"redis_app_users": [{"name": "demo", "password": "a"}], "redis_admin_password": "b"}


#: What an app server needs from python_app (the callable it serves).
APP = {"python_app_entrypoint": "webtier_demo_flask:create_app()"}


def messages(roles, values, facts=ROOMY, peers=None) -> list[str]:
    values = {**APP, **values} if {"gunicorn", "uwsgi"} & set(roles) else values
    return [str(f) for f in live.check("h1", roles, values, facts, peers)]


@pytest.mark.parametrize(
    ("role", "variable", "value"),
    [
        ("gunicorn", "gunicorn_backlog", 8192),
        ("uwsgi", "uwsgi_listen", 8192),
        ("nginx", "nginx_listen_backlog", 8192),
        ("redis", "redis_tcp_backlog", 8192),
    ],
)
def test_a_backlog_above_the_hosts_somaxconn_is_refused(role, variable, value):
    values = {variable: value, **(PASSWORDS if role == "redis" else {})}
    assert messages([role], values) == []
    [message] = messages([role], values, TIGHT)
    assert message.startswith(f"h1: {variable}={value} breaks net.core.somaxconn=4096 on h1")
    assert f"lower {variable} to 4096" in message


def test_descriptors_are_held_against_what_the_host_grants_not_the_plan():
    values = {"redis_maxclients": 20000, **PASSWORDS}
    assert messages(["redis"], values) == []
    [message] = messages(["redis"], values, TIGHT)
    assert "redis_maxclients=20000 breaks the NOFILE limit services get on h1, 16384" in message
    assert "need 20032" in message


def test_auto_sizes_count_the_hosts_cpus():
    # 15000 connections: the auto rlimit (2 x) is 30000, beyond the container's 16384.
    [message] = messages(["nginx"], {"nginx_worker_connections": 15000}, TIGHT)
    assert "nginx_worker_rlimit_nofile=30000 breaks the NOFILE limit services get on h1" in message


def test_valkey_is_refused_where_debian_does_not_package_it():
    values = {"redis_engine": "valkey", **PASSWORDS}
    assert messages(["redis"], values) == []
    [message] = messages(["redis"], values, TIGHT)
    assert "redis_engine=valkey breaks what Debian bookworm packages" in message


def test_without_facts_only_the_model_judges():
    assert messages(["gunicorn"], {"gunicorn_backlog": 60000}, None) == []
    [message] = messages(["gunicorn"], {"gunicorn_workers": 0}, None)
    assert "gunicorn_workers=0 breaks the gunicorn role's model" in message


def test_the_app_server_must_speak_the_apps_interface():
    [message] = messages(["uwsgi"], {"python_app_interface": "asgi"})
    assert "python_app_interface=asgi breaks uWSGI serves WSGI apps only" in message
    [message] = messages(["gunicorn"], {"python_app_interface": "asgi"})
    assert "gunicorn_worker_class=gthread breaks the app's interface" in message


def set_of(**roles) -> dict:
    """A replicated set: host name -> its Redis variables."""
    return {
        name: {"redis_replication_group": "redis", "redis_replication_role": role, **PASSWORDS}
        for name, role in roles.items()
    }


def test_a_replicated_set_needs_exactly_one_primary():
    base = {"redis_replication_group": "redis", "redis_bind": ["127.0.0.1", "private"]}
    values = {**base, "redis_replication_password": "r", **PASSWORDS}
    good = set_of(h1="primary", h2="replica")
    assert messages(["redis"], {**values, "redis_replication_role": "primary"}, peers=good) == []
    two = set_of(h1="primary", h2="primary")
    [message] = messages(["redis"], {**values, "redis_replication_role": "primary"}, peers=two)
    assert "redis_replication_group=redis breaks" in message
    assert "(its primaries: h1, h2)" in message


def test_sentinels_quorum_must_be_reachable():
    values = {
        "redis_replication_group": "redis",
        "redis_replication_role": "primary",
        "redis_bind": ["127.0.0.1", "private"],
        "redis_replication_password": "r",
        "redis_sentinel": True,
        "redis_sentinel_password": "s",
        "redis_sentinel_auth_password": "t",
        "redis_sentinel_quorum": 3,
        **PASSWORDS,
    }
    peers = {name: {**v, "redis_sentinel": True} for name, v in set_of(h2="replica").items()}
    [message] = messages(["redis"], values, peers={**peers, "h1": values})
    assert "redis_sentinel_quorum=3 breaks the 2 Sentinel host(s) of redis" in message


def test_notes_say_what_works_but_deserves_a_word():
    said = live.notes("h1", ["redis"], PASSWORDS, TIGHT)
    assert len(said) == 1
    assert "vm.overcommit_memory=0" in said[0]
    assert "on the container host" in said[0]
    assert live.notes("h1", ["redis"], PASSWORDS, ROOMY) == []
    values = {"gunicorn_worker_class": "sync", "gunicorn_worker_connections": 500}
    [note] = live.notes("h1", ["gunicorn"], values, ROOMY)
    assert "ignored by sync workers" in note


def test_facts_are_read_as_kernel_tuning_publishes_them():
    published = {
        "somaxconn": "4096",
        "tcp_max_syn_backlog": "4096",
        "nofile_hard": "16384",
        "cpus": "2",
        "release": "bookworm",
        "overcommit_memory": "0",
        "in_container": "True",
    }
    assert live.HostFacts.read(published) == TIGHT
