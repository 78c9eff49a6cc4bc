"""The roles' check of a host (the ``webtier_check`` action in each validate.yml) says
exactly what pyinfra's deploy says for the same variables and facts: both are
webtier.checks.live.check. One ansible-playbook run judges every case, each a host of its own
on the controller's local connection; no host is contacted."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from webtier import ROOT

#: What a fresh Debian container grants (the role scenarios' hosts).
from webtier.checks import live

FACTS = {
    "somaxconn": 4096,
    "tcp_max_syn_backlog": 65535,
    "nofile_hard": 16384,
    "cpus": 2,
    "release": "bookworm",
    "overcommit_memory": 0,
    "in_container": True,
}
SECRET = "a/b c#d@e"
PASSWORDS = {
    "redis_app_users": [{"name": "demo", "password": SECRET}],
    "redis_admin_password": "b",
}
#: name: (roles, variables, what the message says). Each fails on the facts above but
#: "sound", which passes with a warning. The role scenarios (roles/*/molecule) refuse
#: two such cases each on real hosts, proving nothing changes; the other cases of a
#: role's check live here, where one run judges them all.
CASES = {
    "sound": (["redis"], PASSWORDS, ""),
    "gunicorn-worker-class": (
        ["gunicorn"],
        {"gunicorn_worker_class": "eventlet"},
        "gunicorn_worker_class=eventlet breaks the gunicorn role's model: Input should be",
    ),
    "uwsgi-zero-processes": (
        ["uwsgi"],
        {"uwsgi_processes": 0},
        "uwsgi_processes=0 breaks the uwsgi role's model: a count must be an int >= 1",
    ),
    "uwsgi-public-stats-server": (
        ["uwsgi"],
        {"uwsgi_stats": "0.0.0.0:9191"},
        "uwsgi_stats=0.0.0.0:9191 breaks the uwsgi role's model: a loopback host:port or a "
        "socket path (the stats server has no authentication)",
    ),
    "nginx-rlimit-below-the-connections": (
        ["nginx"],
        {"nginx_worker_connections": 4096, "nginx_worker_rlimit_nofile": 4100},
        "nginx_worker_rlimit_nofile=4100 breaks nginx_worker_connections=4096 + 64",
    ),
    "nginx-auto-rlimit-above-the-service-limit": (
        ["nginx"],
        {"nginx_worker_connections": 15000},
        "nginx_worker_rlimit_nofile=30000 breaks the NOFILE limit services get on "
        "nginx-auto-rlimit-above-the-service-limit, 16384 (nginx workers need 30000)",
    ),
    "nginx-zero-workers": (
        ["nginx"],
        {"nginx_worker_processes": 0},
        "nginx_worker_processes=0 breaks the nginx role's model: a count",
    ),
    "redis-unknown-profile": (
        ["redis"],
        {"redis_profile": "fast", **PASSWORDS},
        "redis_profile=fast breaks the redis role's model: Input should be 'cache' or 'store'",
    ),
    "redis-maxclients-beyond-nofile": (
        ["redis"],
        {"redis_maxclients": 30000, **PASSWORDS},
        "redis_maxclients=30000 breaks the NOFILE limit services get on "
        "redis-maxclients-beyond-nofile, 16384 (Redis's clients plus its own descriptors "
        "need 30032)",
    ),
    "redis-no-app-password": (
        ["redis"],
        {**PASSWORDS, "redis_app_users": [{"name": "demo", "password": ""}]},
        "redis_app_users[0].password= breaks a password for demo while redis_auth is true",
    ),
    "redis-maxmemory-unreadable": (
        ["redis"],
        {"redis_maxmemory": "lots", **PASSWORDS},
        "redis_maxmemory=lots breaks the redis role's model: bytes (1073741824)",
    ),
    "redis-cache-without-memory-limit": (
        ["redis"],
        {"redis_maxmemory": 0, "redis_profile": "cache", **PASSWORDS},
        "redis_maxmemory=0 breaks a limit for the cache profile",
    ),
    "redis-sentinel-without-a-set": (
        ["redis"],
        {"redis_sentinel": True, **PASSWORDS},
        "redis_sentinel=true breaks a replicated set for Sentinel to watch",
    ),
    "redis-port-out-of-range": (
        ["redis"],
        {"redis_port": 70000, **PASSWORDS},
        "redis_port=70000 breaks the redis role's model: at most 65535",
    ),
    "redis-valkey-on-bookworm": (
        ["redis"],
        {"redis_engine": "valkey", **PASSWORDS},
        "redis_engine=valkey breaks what Debian bookworm packages",
    ),
    "app-bad-entry-point": (
        ["python_app"],
        {
            "python_app_name": "demo",
            "python_app_src": "apps/demo_flask",
            "python_app_entrypoint": "not an entry point",
        },
        "python_app_entrypoint=not an entry point breaks the python_app role's model: "
        "module:callable or module:factory()",
    ),
    "app-as-root": (
        ["python_app"],
        {
            "python_app_name": "demo",
            "python_app_src": "apps/demo_flask",
            "python_app_entrypoint": "m:app",
            "python_app_user": "root",
        },
        "python_app_user=root breaks an app's own user",
    ),
    "firewall-rule-injection": (
        ["firewall"],
        {"firewall_extra_rules": ["tcp dport 22 accept; flush ruleset"]},
        "firewall_extra_rules[0]=tcp dport 22 accept; flush ruleset breaks the firewall "
        "role's model: one nftables rule",
    ),
    "kernel-port-range": (
        ["kernel_tuning"],
        {"kernel_tuning_ip_local_port_range": {"low": 50000, "high": 40000}},
        "kernel_tuning_ip_local_port_range={'low': 50000, 'high': 40000} breaks the"
        " kernel_tuning role's model: low below high",
    ),
    "kernel nofile above nr_open": (
        ["kernel_tuning"],
        {"kernel_tuning_nofile": 4000000, "kernel_tuning_nr_open": 2097152},
        "kernel_tuning_nofile=4000000 breaks fs.nr_open=2097152",
    ),
    "kernel-timestamps-off": (
        ["kernel_tuning"],
        {"kernel_tuning_dependent_sysctl": {"net.ipv4.tcp_timestamps": 0}},
        "breaks net.ipv4.tcp_timestamps=0 (TIME-WAIT reuse needs timestamps)",
    ),
    "kernel-somaxconn-not-a-number": (
        ["kernel_tuning"],
        {"kernel_tuning_somaxconn": "many"},
        "kernel_tuning_somaxconn=many breaks the kernel_tuning role's model",
    ),
}
PLAY = [
    {
        "name": "Check each case",
        "hosts": "cases",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Check",
                "webtier.stack.webtier_check": {
                    "roles": "{{ case_roles }}",
                    "facts": "{{ case_facts }}",
                },
                "ignore_errors": True,
            }
        ],
    },
    {
        # A replicated set under Sentinel whose Sentinel settings are this play's vars,
        # not each host's: the check counts the set's Sentinels with them.
        "name": "Check a replicated set",
        "hosts": "redis_set",
        "gather_facts": False,
        "vars": {"redis_sentinel": True, "redis_sentinel_quorum": 2},
        "tasks": [
            {
                "name": "Check",
                "webtier.stack.webtier_check": {"roles": ["redis"], "facts": FACTS},
                "ignore_errors": True,
            }
        ],
    },
]
#: The set's hosts: one primary, two replicas, secrets for replication and Sentinel.
SET = {
    f"set-{name}": {
        "ansible_connection": "local",
        "redis_replication_group": "redis_set",
        "redis_bind": ["127.0.0.1", "10.0.0.1"],
        "redis_replication_password": "r",
        "redis_sentinel_password": "s",
        "redis_sentinel_auth_password": "t",
        **PASSWORDS,
        **({"redis_replication_role": "primary"} if name == "a" else {}),
    }
    for name in "abc"
}


@pytest.fixture(scope="module")
def said(tmp_path_factory) -> dict:
    """What the action answered for each case (one ansible-playbook run for all)."""
    where = tmp_path_factory.mktemp("live_check")
    hosts = {
        name: {"ansible_connection": "local", "case_roles": roles, "case_facts": FACTS, **values}
        for name, (roles, values, _) in CASES.items()
    }
    groups = {"cases": {"hosts": hosts}, "redis_set": {"hosts": SET}}
    (where / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": groups}}, sort_keys=False))
    (where / "play.yml").write_text(yaml.safe_dump(PLAY))
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(where / "hosts.yml"), str(where / "play.yml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=300,
        env={
            **os.environ,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_STRATEGY": "linear",
        },
    )
    # (the timer callback prints its line after the JSON document)
    report, _ = json.JSONDecoder().raw_decode(proc.stdout)
    return {
        host: answer
        for play in report["plays"]
        for host, answer in play["tasks"][0]["hosts"].items()
    }


@pytest.mark.parametrize("name", CASES)
def test_the_ansible_action_says_what_webtier_live_says(said, name):
    roles, values, message = CASES[name]
    facts = live.HostFacts.read(FACTS)
    findings = live.check(name, roles, values, facts)
    answer = said[name]
    assert answer.get("failed", False) == bool(message), answer
    if message:
        assert answer["msg"] == live.report(findings)
        assert f"- {name}: " in answer["msg"], answer["msg"]  # the host is named
        assert message in answer["msg"], answer["msg"]
    assert answer.get("warnings", []) == live.notes(name, roles, values, facts)
    assert SECRET not in json.dumps(answer)  # a secret never reaches the output


def test_a_sound_host_passes_with_what_deserves_a_word(said):
    assert "failed" not in said["sound"] or not said["sound"]["failed"]
    assert "vm.overcommit_memory=0" in said["sound"]["warnings"][0]


def test_a_replicated_set_counts_sentinels_the_play_asks_for(said):
    """Three hosts, Sentinel on each by the play's vars, quorum 2: sound. (Another
    host's hostvars do not hold the play's vars; counted from them alone, the set would
    have one Sentinel and the quorum of 2 would be refused.)"""
    for host in SET:
        assert not said[host].get("failed", False), said[host]
