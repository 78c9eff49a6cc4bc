"""A request through the load balancer reaches every app kind and moves the Redis counter;
every host's limits agree with its kernel."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml
from conftest import ROOT, get
from scenario import flat_output, nofile_limits, run_playbook


def flask_kinds(instances) -> set[str]:
    """The Flask site's server kinds (FastAPI: gunicorn-asgi): app4, Gunicorn's sync
    workers, is in the Ansible scenario only."""
    return {"gunicorn-gthread", "uwsgi"} | ({"gunicorn-sync"} if "app4" in instances else set())


def test_the_flask_site_reaches_gunicorn_and_uwsgi(instances):
    lb = instances["lb1"]
    served = Counter(get(lb, "http://127.0.0.1/")[1].get("server") for _ in range(30))
    assert set(served) == flask_kinds(instances), served


def test_https_serves_the_same_site(instances):
    status, body = get(instances["lb1"], "https://127.0.0.1/")
    assert status == 200
    assert body["app"] == "flask"


def test_the_fastapi_site_reaches_the_asgi_worker(instances):
    status, body = get(instances["lb1"], "http://127.0.0.1:8090/")
    assert status == 200
    assert (body["app"], body["server"], body["host"]) == ("fastapi", "gunicorn-asgi", "app3")


def test_the_redis_counter_moves_through_every_app_kind(instances):
    lb = instances["lb1"]
    seen, values = set(), []
    for url in ["http://127.0.0.1/counter"] * 20 + ["http://127.0.0.1:8090/counter"] * 2:
        status, body = get(lb, url)
        assert status == 200, body
        seen.add(body["server"])
        values.append(body["counter"])
    assert seen == flask_kinds(instances) | {"gunicorn-asgi"}, seen
    assert values == sorted(values)
    assert len(set(values)) == len(values)  # one counter, in Redis, shared by all


def test_a_password_that_a_url_cannot_carry_reaches_redis(instances):
    """The sandbox's app password holds '/', '#', '@' and a space. Every app reads it from
    its secret env file (REDIS_PASSWORD, no URL-encoding) and writes to Redis with it."""
    secrets = yaml.safe_load((ROOT / "inventory/sandbox/group_vars/all/secrets.yml").read_text())
    password = secrets["redis_app_password"]
    assert set("/#@ ") <= set(password)
    for name in ("app1", "app2", "app3"):
        env = instances[name].run("cat /etc/webtier/apps/demo.secret.env").stdout
        assert f'REDIS_PASSWORD="{password}"' in env, name
    answered = Counter()
    for url in ["http://127.0.0.1/counter"] * 20 + ["http://127.0.0.1:8090/counter"] * 2:
        status, body = get(instances["lb1"], url)
        assert status == 200, body
        answered[body["server"]] += 1
    assert set(answered) == flask_kinds(instances) | {"gunicorn-asgi"}, answered


@pytest.mark.parametrize("name", ["lb1", "app1", "app2", "app3", "redis1"])
def test_every_listener_backlog_fits_the_hosts_somaxconn(instances, name):
    host = instances[name]
    somaxconn = int(host.file("/proc/sys/net/core/somaxconn").content_string)
    listeners = [line.split() for line in host.check_output("ss -ltnH").splitlines()]
    assert listeners
    for fields in listeners:
        assert int(fields[2]) <= somaxconn, (name, fields)


def test_nginx_fd_budget_holds(instances):
    lb = instances["lb1"]
    config = lb.check_output("nginx -T 2>/dev/null")
    connections = int(re.search(r"^\s*worker_connections (\d+);", config, re.MULTILINE)[1])
    master = lb.check_output("systemctl show -p MainPID --value nginx")
    for pid in [master, *lb.check_output(f"pgrep -P {master}").split()]:
        nofile, _ = nofile_limits(lb.file(f"/proc/{pid}/limits").content_string)
        # Every connection (client or upstream) is a descriptor, plus logs and files.
        assert nofile >= connections + 64, (pid, nofile, connections)


def test_check_mode_shows_a_change_and_makes_none(instances):
    lb = instances["lb1"]
    before = lb.check_output("sha256sum /etc/nginx/nginx.conf")
    proc = run_playbook(
        ROOT / "molecule/default/converge.yml",
        "--tags",
        "lb",
        "--check",
        "--diff",
        "-e",
        "nginx_keepalive_timeout=30",
        timeout=600,
    )
    out = flat_output(proc)
    assert proc.returncode == 0, out[-3000:]
    assert "- keepalive_timeout 65; + keepalive_timeout 30;" in out, out[-3000:]
    assert lb.check_output("sha256sum /etc/nginx/nginx.conf") == before


def exposure(host, unit: str) -> float:
    """systemd-analyze security's overall exposure of ``unit`` (0 = locked down, 10 = open)."""
    out = host.check_output(f"systemd-analyze security {unit} 2>&1 | tail -n 1")
    return float(re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)[1])


@pytest.mark.parametrize(
    ("name", "unit"), [("app1", "gunicorn-demo"), ("app2", "uwsgi-demo"), ("app3", "gunicorn-demo")]
)
def test_app_units_are_sandboxed_at_least_as_tightly_as_debians_redis(instances, name, unit):
    redis = exposure(instances["redis1"], "redis-server")
    app = exposure(instances[name], unit)
    print(f"systemd-analyze security: {name} {unit} {app}, redis1 redis-server {redis}")
    assert app <= redis, (unit, app, redis)
    user = instances[name].check_output(f"systemctl show -p User --value {unit}")
    assert user not in ("", "root"), user


def reaches(source, target: str, port: int) -> bool:
    """Whether ``source`` opens a TCP connection to target:port within 3 s."""
    probe = f"timeout 3 bash -c 'echo > /dev/tcp/{target}/{port}'"
    return source.run(probe).rc == 0


@pytest.mark.parametrize(
    ("source", "target", "port", "allowed"),
    [
        ("app1", "redis1", 6379, True),  # the app tier reaches Redis
        ("app2", "redis1", 6379, True),
        ("lb1", "redis1", 6379, False),  # the LB does not
        ("lb1", "app1", 8000, True),  # the LB reaches the app servers
        ("lb1", "app2", 8001, True),
        ("redis1", "app1", 8000, False),  # nothing else does
        ("app3", "app1", 8000, False),
        ("redis1", "lb1", 80, True),  # the LB's sites are open to all
        ("lb1", "app1", 22, True),  # SSH stays open (app1 runs sshd)
    ],
)
def test_the_tier_firewall_lets_only_the_calling_tier_in(instances, source, target, port, allowed):
    assert reaches(instances[source], target, port) == allowed


def test_the_firewall_leaves_the_engines_dns_alone(instances):
    """Only its own table is replaced: the container engine's DNS still resolves."""
    assert instances["redis1"].run("getent hosts app1").rc == 0
    tables = instances["redis1"].check_output("nft list tables")
    assert "table inet webtier" in tables
