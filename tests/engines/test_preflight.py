"""site.yml's preflight play refuses bad inventories before any host is contacted.

Each case writes a small inventory whose hosts point at a closed port on 127.0.0.1
(``ansible_port: 9``): any play that reached a host would report it UNREACHABLE. A bad
inventory must stop ``ansible-playbook site.yml`` with its own message and no host
contacted; the sound one passes preflight and only then fails to reach the hosts,
which proves the harness would see a host being touched.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from webtier import ROOT, preflight
from webtier.inventory import load

HOSTS = {
    "all": {
        "vars": {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": 9,  # discard: closed here, so any connection fails at once
            "ansible_ssh_common_args": "-o ConnectTimeout=2",
        },
        "children": {
            "loadbalancers": {"hosts": {"lb1": None}},
            "appservers": {
                "children": {
                    "app_gunicorn": {"hosts": {"app1": None}},
                    "app_uwsgi": {"hosts": {"app2": None}},
                }
            },
            "redis": {"hosts": {"redis1": None}},
        },
    }
}
GROUP_VARS = {
    "all": {"kernel_tuning_somaxconn": 4096, "kernel_tuning_tcp_max_syn_backlog": 4096},
    "appservers": {"python_app_name": "demo", "python_app_src": "apps/demo_flask"},
    "app_gunicorn": {
        "webtier_app_server": "gunicorn",
        "gunicorn_backlog": 2048,
        "gunicorn_worker_connections": 2048,
    },
    "app_uwsgi": {"webtier_app_server": "uwsgi", "uwsgi_listen": 2048},
    "loadbalancers": {
        "nginx_worker_connections": 2048,
        "nginx_listen_backlog": 1024,
        "nginx_upstreams": [{"name": "app", "group": "appservers"}],
        "nginx_sites": [{"name": "app", "locations": [{"path": "/", "upstream": "app"}]}],
    },
    "redis": {"redis_tcp_backlog": 1024, "redis_app_password": "x", "redis_admin_password": "y"},
}

# (case, {group or host: variables}, what the message must say). Keys naming a host
# go to host_vars/, the others to group_vars/.
CASES = [
    (
        "backlog above somaxconn",
        {"app_gunicorn": {"gunicorn_backlog": 8192}},
        "app1: gunicorn_backlog=8192 breaks net.core.somaxconn=4096",
    ),
    (
        "uwsgi listen above somaxconn",
        {"app_uwsgi": {"uwsgi_listen": 5000}},
        "app2: uwsgi_listen=5000 breaks net.core.somaxconn=4096",
    ),
    (
        "nginx backlog above somaxconn",
        {"loadbalancers": {"nginx_listen_backlog": 4097}},
        "lb1: nginx_listen_backlog=4097 breaks net.core.somaxconn=4096",
    ),
    (
        "redis backlog above somaxconn",
        {"redis": {"redis_tcp_backlog": 65535}},
        "redis1: redis_tcp_backlog=65535 breaks net.core.somaxconn=4096",
    ),
    (
        "backlog above the SYN backlog",
        {"all": {"kernel_tuning_tcp_max_syn_backlog": 512}, "redis1": {"redis_tcp_backlog": 1024}},
        "redis1: redis_tcp_backlog=1024 breaks net.ipv4.tcp_max_syn_backlog=512",
    ),
    (
        "somaxconn above the kernel's maximum",
        {"all": {"kernel_tuning_somaxconn": 70000}},
        "kernel_tuning_somaxconn=70000 breaks the kernel's maximum 65535",
    ),
    (
        "NOFILE above nr_open",
        {"all": {"kernel_tuning_nofile": 2000000}},
        "kernel_tuning_nofile=2000000 breaks fs.nr_open=1048576",
    ),
    (
        "nginx rlimit below its connections",
        {"loadbalancers": {"nginx_worker_rlimit_nofile": 2048}},
        "lb1: nginx_worker_rlimit_nofile=2048 breaks nginx_worker_connections=2048 + 64",
    ),
    (
        "nginx rlimit above NOFILE",
        {"lb1": {"kernel_tuning_nofile": 4096, "nginx_worker_connections": 3000}},
        "lb1: nginx_worker_rlimit_nofile=6000 breaks the NOFILE limit kernel_tuning_nofile=4096",
    ),
    (
        "redis maxclients above NOFILE",
        {"redis1": {"kernel_tuning_nofile": 8000}},
        "redis1: redis_maxclients=10000 breaks the NOFILE limit kernel_tuning_nofile=8000",
    ),
    (
        "gevent connections above NOFILE",
        {
            "app1": {
                "gunicorn_worker_class": "gevent",
                "gunicorn_worker_connections": 5000,
                "kernel_tuning_nofile": 4096,
            }
        },
        "app1: gunicorn_worker_connections=5000 breaks the NOFILE limit kernel_tuning_nofile=4096",
    ),
    (
        "app queues shorter than the load balancer",
        {"loadbalancers": {"nginx_worker_connections": 65536, "nginx_worker_rlimit_nofile": 65600}},
        "gunicorn_backlog=2048 breaks the load balancers' 65536 proxied connections",
    ),
    (
        "a gthread worker cannot hold its host's share of the proxied connections",
        {"app1": {"gunicorn_worker_connections": 1000}},
        "app1: gunicorn_worker_connections=1000 breaks this host's share",
    ),
    (
        "redis maxclients below the app tier",
        {"redis": {"redis_maxclients": 10}, "app2": {"uwsgi_threads": 16}},
        "redis1: redis_maxclients=10 breaks the app tier's",
    ),
    (
        "zero gunicorn workers",
        {"app1": {"gunicorn_workers": 0}},
        "app1: gunicorn_workers=0 breaks a count must be an int >= 1 or auto",
    ),
    (
        "uwsgi processes not a number",
        {"app_uwsgi": {"uwsgi_processes": "many"}},
        "app2: uwsgi_processes=many breaks a count must be an int >= 1 or auto",
    ),
    (
        "zero CPUs",
        {"app1": {"webtier_cpus": 0}},
        "app1: webtier_cpus=0 breaks a count must be an int >= 1",
    ),
    (
        "misspelt variable",
        {"app_gunicorn": {"gunicorn_worker": 3}},
        "app1: gunicorn_worker=3 breaks the gunicorn role has no such variable",
    ),
    (
        "unknown worker class",
        {"app1": {"gunicorn_worker_class": "eventlet"}},
        "value of gunicorn_worker_class must be one of: sync, gthread, gevent, asgi",
    ),
    (
        "worker_connections not an int",
        {"loadbalancers": {"nginx_worker_connections": "lots"}},
        "argument 'nginx_worker_connections' is of type str",
    ),
    ("port not an int", {"redis": {"redis_port": "six"}}, "argument 'redis_port' is of type str"),
    (
        "reuseport not a bool",
        {"loadbalancers": {"nginx_reuseport": "maybe"}},
        "argument 'nginx_reuseport' is of type str",
    ),
    (
        # What `-e nginx_access_log=false` gives: the string, which a template takes as true.
        "boolean given as a string",
        {"loadbalancers": {"nginx_access_log": "false"}},
        "lb1: nginx_access_log=false breaks a string where the role wants a boolean",
    ),
    (
        "ASGI app on a WSGI worker class",
        {"app1": {"python_app_interface": "asgi"}},
        "app1: gunicorn_worker_class=gthread breaks the app's interface python_app_interface=asgi",
    ),
    (
        "uWSGI serving an ASGI app",
        {"app2": {"python_app_interface": "asgi"}},
        "app2: python_app_interface=asgi breaks uWSGI serves WSGI apps only",
    ),
    (
        "uwsgi threads zero on one host",
        {"app2": {"uwsgi_threads": 0}},
        "app2: uwsgi_threads=0 breaks a count must be an int >= 1",
    ),
    (
        "unknown redis profile",
        {"redis": {"redis_profile": "fast"}},
        "value of redis_profile must be one of",
    ),
]


def write_inventory(root: Path, overrides: dict) -> Path:
    inventory = root / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump(HOSTS))
    hosts = set(load_hosts())
    group_vars = {g: dict(v) for g, v in GROUP_VARS.items()}
    host_vars: dict[str, dict] = {}
    for name, variables in overrides.items():
        target = host_vars if name in hosts else group_vars
        target.setdefault(name, {}).update(variables)
    for folder, data in (("group_vars", group_vars), ("host_vars", host_vars)):
        for name, variables in data.items():
            (inventory / folder / f"{name}.yml").write_text(yaml.safe_dump(variables))
    return inventory


def load_hosts() -> list[str]:
    found: list[str] = []

    def walk(node: dict) -> None:
        found.extend((node.get("hosts") or {}).keys())
        for child in (node.get("children") or {}).values():
            walk(child or {})

    walk(HOSTS["all"])
    return found


def site(inventory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", str(inventory), "site.yml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=300,
    )


def test_there_are_at_least_twenty_cases_each_with_its_own_message():
    assert len(CASES) >= 20
    assert len({expected for _, _, expected in CASES}) == len(CASES)


def test_sound_inventory_passes_preflight_then_reaches_for_the_hosts(tmp_path):
    """The control case: what makes the bad cases' "no host touched" observable."""
    inventory = write_inventory(tmp_path, {})
    found = load(inventory)
    assert preflight.run(found.all_host_vars(), found.members) == []
    proc = site(inventory)
    out = proc.stdout + proc.stderr
    assert "Preflight passed for 4 hosts" in out, out
    assert "UNREACHABLE" in out, out


@pytest.mark.parametrize(("case", "overrides", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_inventory_stops_site_yml_before_any_host(tmp_path, case, overrides, expected):
    inventory = write_inventory(tmp_path, overrides)
    proc = site(inventory)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert expected in out, (case, out)
    assert "Preflight found" in out, out
    # Nothing after the preflight play ran, and no host was contacted.
    assert "PLAY [Kernel tuning" not in out, out
    assert "UNREACHABLE" not in out, out
    # The package gives the same answer without Ansible (the pyinfra path).
    found = load(inventory)
    messages = [str(f) for f in preflight.run(found.all_host_vars(), found.members)]
    assert any(expected in m for m in messages), messages
