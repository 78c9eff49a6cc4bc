"""A request through the load balancer reaches every app kind and moves the Redis counter;
every host's limits agree with its kernel."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, get
from scenario import flat_output, nofile_limits, run_playbook

SECRETS = yaml.safe_load((ROOT / "inventory/sandbox/group_vars/all/secrets.yml").read_text())


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
    """The sandbox's demo password holds '/', '#', '@' and a space. Every app reads it
    from its secret env file (REDIS_PASSWORD, no URL-encoding) and writes to Redis with it."""
    password = SECRETS["sandbox_redis_demo_password"]
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


#: What the demo app's own client (webtier_demo_flask.redis_client, built from the env
#: files its unit reads) may do, one line per attempt: OK or the error's class.
AS_THE_DEMO_APP = """
import redis
from webtier_demo_flask import redis_client
client = redis_client(3)
attempts = {
    "own key": lambda: client.set("demo:isolation", "1"),
    "read notes key": lambda: client.get("notes:theirs"),
    "write notes key": lambda: client.set("notes:theirs", "pwned"),
    "delete notes key": lambda: client.unlink("notes:theirs"),
    "unprefixed key": lambda: client.set("isolation", "1"),
    "publish sentinel hello": lambda: client.publish("__sentinel__:hello", "x"),
    "flush all": lambda: client.flushall(),
}
for name, attempt in attempts.items():
    try:
        attempt()
        print(name, "OK")
    except redis.RedisError as exc:
        print(name, type(exc).__name__)
"""


def redis_primary(instances) -> str:
    """The Redis host that is the primary now (the Sentinels may have moved it)."""
    for name in ("redis1", "redis2", "redis3"):
        if name in instances:
            role = instances[name].check_output(
                "REDISCLI_AUTH=%s redis-cli --user admin --no-auth-warning ROLE",
                SECRETS["redis_admin_password"],
            )
            if role.split()[0] == "master":
                return name
    raise AssertionError("no Redis primary")


def test_an_app_reaches_its_own_keys_only(instances):
    """Each app logs in as its own Redis user (redis_app_users): the demo app, with the
    credentials of its env files, cannot read, change or delete the notes app's key,
    write outside its prefix, or publish on Sentinel's channel (where a PUBLISH can
    move the Sentinels' primary); the notes user can reach its own key."""
    primary = instances[redis_primary(instances)]
    written = primary.run(
        "REDISCLI_AUTH=%s redis-cli --user notes --no-auth-warning SET notes:theirs mine",
        SECRETS["sandbox_redis_notes_password"],
    )
    assert written.stdout.strip() == "OK", written.stderr
    out = instances["app1"].check_output(
        "webtier-unit-run --unit gunicorn-demo -- /srv/demo/current/venv/bin/python -c %s",
        AS_THE_DEMO_APP,
    )
    seen = dict(line.rsplit(" ", 1) for line in out.splitlines() if line.strip())
    assert seen == {
        "own key": "OK",
        "read notes key": "NoPermissionError",
        "write notes key": "NoPermissionError",
        "delete notes key": "NoPermissionError",
        "unprefixed key": "NoPermissionError",
        "publish sentinel hello": "NoPermissionError",
        "flush all": "NoPermissionError",
    }, out
    kept = primary.check_output(
        "REDISCLI_AUTH=%s redis-cli --user notes --no-auth-warning GET notes:theirs",
        SECRETS["sandbox_redis_notes_password"],
    )
    assert kept.strip() == "mine"


@pytest.mark.skipif(
    os.environ.get("MOLECULE_SCENARIO_NAME") != "pyinfra",
    reason="Ansible's ACL LOAD: the redis HA scenario's rotation (test_secrets.py)",
)
def test_pyinfra_puts_a_new_app_password_live_without_a_restart(instances, tmp_path):
    """One app's new password (notes: no host of this scenario runs it) reaches Redis
    with ACL LOAD: the server keeps its process and the demo app its connections."""
    redis = instances["redis1"]
    pid = redis.check_output("systemctl show -p MainPID --value redis-server")
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "molecule/pyinfra/inventory", inventory, symlinks=False)
    new = "rotated-" + secrets.token_hex(8)
    host_vars = inventory / "host_vars/redis1.yml"
    host_vars.write_text(host_vars.read_text() + f"sandbox_redis_notes_password: {new}\n")
    run = subprocess.run(
        [
            "pyinfra",
            "-y",
            "--limit",
            "redis",
            "pyinfra_deploy/inventory.py",
            "pyinfra_deploy/deploy.py",
        ],
        cwd=ROOT,
        env={**os.environ, "WEBTIER_INVENTORY": str(inventory)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "Load the new ACL file (ACL LOAD)" in out, out[-3000:]
    assert new not in out
    assert redis.check_output("systemctl show -p MainPID --value redis-server") == pid

    def ping(password: str) -> str:
        return redis.run(
            "REDISCLI_AUTH=%s redis-cli --user notes --no-auth-warning PING", password
        ).stdout.strip()

    assert ping(new) == "PONG"
    assert ping(SECRETS["sandbox_redis_notes_password"]) != "PONG"
    # the admin's password, handed to ACL LOAD: gone
    assert not redis.file("/var/lib/webtier/pyinfra-candidates/redis-admin").exists
    status, body = get(instances["lb1"], "http://127.0.0.1/counter")
    assert status == 200, body


#: Where a secret must not be on a database host: logs, temporary files, root's home, what
#: the engines stage (its own files, /etc/pgbouncer/userlist.txt and the data directory,
#: hold the verifier).
HUNTED = "/tmp /var/tmp /run /var/log /root /var/lib/webtier"


def test_the_database_hosts_secrets_are_in_no_log_argv_or_temporary_file(instances):
    """After the converge (pyinfra's in its scenario: it set the user's verifier), the
    database user's password and its verifier are in no journal entry, no process's argv
    or environment, and no log or temporary file of the database host."""
    if "db1" not in instances:
        pytest.skip("this scenario has no database host")
    password = SECRETS["sandbox_postgresql_notes_password"]
    # Every verifier by its form: the users' have random salts.
    patterns = f"{password}\nSCRAM-SHA-256$\n"
    # The patterns reach the host on stdin, into a file the hunt does not search.
    subprocess.run(
        ["docker", "exec", "-i", "db1", "sh", "-c", "cat > /dev/shm/webtier-hunt"],
        input=patterns,
        text=True,
        check=True,
    )
    db1 = instances["db1"]
    files = db1.run(f"grep -rlsF -f /dev/shm/webtier-hunt {HUNTED}").stdout.split()
    journal = db1.run("journalctl --no-pager -o cat | grep -cF -f /dev/shm/webtier-hunt").stdout
    processes = db1.run(
        "for p in /proc/[0-9]*; do cat $p/cmdline $p/environ 2>/dev/null; echo; done"
        " | grep -caF -f /dev/shm/webtier-hunt"
    ).stdout
    db1.run("rm -f /dev/shm/webtier-hunt")
    assert files == [], files
    assert journal.strip() == "0"
    assert processes.strip() == "0"


def test_pgbouncer_takes_only_clients_that_speak_tls(instances):
    """db1 (pyinfra's, with the TLS material its converge writes as a second inventory):
    a client without TLS is refused, one that verifies the certificate against the CA
    logs in by the host's name, and by the host's address (not in the certificate) it
    is refused."""
    if "db1" not in instances:
        pytest.skip("this scenario has no database host")
    db1 = instances["db1"]
    ca = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki/ca.crt").read_text()
    db1.check_output(f"cat > /root/webtier-test-ca.crt <<'EOF'\n{ca.strip()}\nEOF")
    address = db1.check_output("getent ahostsv4 db1 | head -1 | cut -d' ' -f1")

    def psql(host: str, sslmode: str):
        dsn = (
            f"host={host} port=6432 user=notes dbname=notes connect_timeout=5 "
            f"sslmode={sslmode} sslrootcert=/root/webtier-test-ca.crt"
        )
        return db1.run(
            f"PGPASSWORD=%s psql '{dsn}' -XAtc 'SELECT current_user'",
            SECRETS["sandbox_postgresql_notes_password"],
        )

    plain = psql("db1", "disable")
    assert plain.rc != 0
    assert "SSL required" in plain.stderr, plain.stderr
    verified = psql("db1", "verify-full")
    assert verified.rc == 0, verified.stderr
    assert verified.stdout.strip() == "notes"
    assert "does not match host name" in psql(address, "verify-full").stderr


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
