"""The roles' check of a host (the ``webtier_check`` action in each validate.yml) says
exactly what pyinfra's deploy says for the same variables and facts: both are
webtier.live.check. One ansible-playbook run judges every case, each a host of its own
on the controller's local connection; no host is contacted."""

from __future__ import annotations

import json
import os
import re
import subprocess

import yaml

from webtier import ROOT, live

FACTS = {
    "somaxconn": 4096,
    "tcp_max_syn_backlog": 4096,
    "nofile_hard": 16384,
    "cpus": 2,
    "release": "bookworm",
    "overcommit_memory": 0,
    "in_container": True,
}
PASSWORDS = {"redis_app_password": "a/b c#d@e", "redis_admin_password": "b"}
#: name: (roles, variables); each fails, or passes with a warning, on the facts above.
CASES = {
    "backlog": (["gunicorn"], {"gunicorn_backlog": 8192}),
    "descriptors": (["redis"], {"redis_maxclients": 20000, **PASSWORDS}),
    "release": (["redis"], {"redis_engine": "valkey", **PASSWORDS}),
    "model": (["uwsgi"], {"uwsgi_processes": 0, "uwsgi_stats": "0.0.0.0:9191"}),
    "interface": (["uwsgi"], {"python_app_interface": "asgi"}),
    "kernel": (["kernel_tuning"], {"kernel_tuning_nofile": 4000000}),
    "sound": (["redis"], PASSWORDS),
}
PLAY = [
    {
        "name": "Check each case",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Check",
                "webtier_check": {"roles": "{{ case_roles }}", "facts": "{{ case_facts }}"},
                "ignore_errors": True,
            }
        ],
    }
]


def test_the_ansible_action_says_what_webtier_live_says(tmp_path):
    hosts = {
        name: {"ansible_connection": "local", "case_roles": roles, "case_facts": FACTS, **values}
        for name, (roles, values) in CASES.items()
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PLAY))
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")],
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
    results = report["plays"][0]["tasks"][0]["hosts"]
    facts = live.HostFacts.read(FACTS)
    for name, (roles, values) in CASES.items():
        findings = live.check(name, roles, values, facts)
        said = results[name]
        assert said.get("failed", False) == bool(findings), (name, said)
        if findings:
            assert said["msg"] == live.report(findings)
        assert said.get("warnings", []) == live.notes(name, roles, values, facts)
        # a secret never reaches the output
        assert "a/b c#d@e" not in json.dumps(said)
    assert re.search(r"redis_maxclients=20000 breaks the NOFILE limit", proc.stdout)
