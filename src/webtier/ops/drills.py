"""Failure drills on the deployed sandbox: each runs a bounded load through the load
balancer (playbooks/files/webtier_probe.py, 64 keep-alive clients, from the load generator
container on the sandbox's network) while it does one thing to the stack, then prints
every request counted: sent, answered, failed by kind, and the slowest. Like a browser
or nginx itself, a client retries a GET once when the server closed its idle
keep-alive connection before reading it (RFC 9112, 9.3.1); those are counted as
retried, not failed. Nothing is asserted here: the counts are the result (see
README.md, "Releases, drills and security").

    python -m webtier.ops.drills DRILL|all

rolling          playbooks/deploy.yml releases every app host, one at a time
reloads          ten nginx reloads (nginx -t first), one a second
kill-master      SIGKILL to a Gunicorn host's arbiter; systemd starts it again
host-down        that host shut down (systemd halts its services) for 15 s, then started again
host-crash       that host's container killed (SIGKILL to every process, a power cut), then started
redis-restart    Redis restarted under load on /counter (LB -> app -> Redis)
redis-failover   the Redis primary stopped under load on /counter: Sentinel promotes a
                 replica, the apps follow; the old primary is started again (a replica)
broken-template  site.yml --tags lb with a broken nginx.conf template
worker-kill      40 CPU-bound jobs queued through the load balancer; a worker host's unit
                 SIGKILLed mid-batch: every job completes (the ones it held redelivered)
worker-release   jobs queued at 5 a second while the worker tier gets a new release
                 (playbooks/workers.yml): every job sent completes
migration        the Django demo (/db: a query per request) while deploy.yml
                 releases its app hosts a copy of it with a new column and its
                 migration: applied once (django_migrations), before either switches

Who plays each part is read from the inventory (``--inventory``, the sandbox by
default; :class:`Cast`): the first load balancer's first site whose ``/`` is served
by Gunicorn, and the first of those Gunicorn hosts; the first worker and database host;
the app hosts of the Django demo and the load balancer in front of them. Targets only
the environment's own containers; every load stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

from webtier import ROOT

PREFIX = "webtier-sandbox"
LOADGEN = f"{PREFIX}-loadgen"
CONNECTIONS = 64
PROBE = ROOT / "playbooks" / "files" / "webtier_probe.py"
#: The inventory the drills read their cast from (``--inventory``).
INVENTORY = "inventory/sandbox"


@dataclass(frozen=True)
class Cast:
    """Who plays which part in the drills, read from an inventory (the inventory's host
    names; a host's container is its ``ansible_host``)."""

    containers: dict[str, str]  # inventory host -> container
    loadgen: str  # the load generator's container (playbooks/loadtest.yml --tags loadgen)
    lb: str  # the load balancer the page-load drills go through
    url: str  # lb's first site whose "/" Gunicorn serves, as the load generator GETs it
    outside: str  # lb's plain HTTP port as this machine reaches it
    app: str  # a Gunicorn host behind url: the host the kill and host drills take down
    units: dict[str, str]  # every app host -> its app server's unit
    redis: tuple[str, ...]  # the Redis hosts, the configured primary first
    sentinel_password: str
    worker: str | None
    worker_unit: str | None
    db: str | None
    db_set: tuple[str, ...]  # db's replicated set (pg_auto_failover), or () for one server
    db_monitor: str | None  # the set's monitor
    django: tuple[str, ...]  # the Django demo's app hosts
    django_url: str | None  # /db on the load balancer in front of them
    #: each load balancer's sites with a plain HTTP port: (URL of a proxied location,
    #: "/" when the site has it, the app hosts behind it)
    sites: dict[str, list[tuple[str, list[str]]]]

    @classmethod
    def read(cls, inventory: str = INVENTORY) -> Cast:
        # (the model and the files' plan only when a drill runs: the unit tests of the
        # thresholds need neither)
        from webtier.files import configs, nginx  # noqa: PLC0415
        from webtier.files.facts import Facts  # noqa: PLC0415
        from webtier.model.inventory import load as load_inventory  # noqa: PLC0415
        from webtier.model.inventory import with_defaults  # noqa: PLC0415
        from webtier.model.topology import roles_of  # noqa: PLC0415

        inv = load_inventory(str(ROOT / inventory))
        groups, hostvars = inv.members, inv.all_host_vars()

        def units(host: str) -> list[str]:
            v = configs.variables(inv, host, roles_of(host, groups), None)
            return [
                PurePosixPath(f["dest"]).stem
                for role in ("gunicorn", "uwsgi", "celery_worker")
                if role in roles_of(host, groups)
                for f in configs.role_files(role, v, Facts.assumed(v), groups, hostvars)
                if f["dest"].endswith(".service")
            ]

        def served(lb: str) -> list[tuple[str, list[str]]]:
            plan = nginx.plan(nginx.lb_settings(lb, hostvars), groups, hostvars)
            upstreams = {u["name"]: u for u in plan["nginx_upstreams_resolved"]}
            out = []
            for site in plan["nginx_sites_resolved"]:
                ports = [listen["port"] for listen in site["listen"] if not listen["ssl"]]
                for location in sorted(
                    (loc for loc in site["locations"] if loc["pass"]),
                    key=lambda loc: loc["path"] != "/",
                )[:1]:
                    if ports:
                        path = location["path"].lstrip("=~ ").split()[0]
                        hosts = [
                            server["address"].rsplit(":", 1)[0]
                            for one in location["pass"]
                            for server in upstreams[one["name"]]["servers"]
                        ]
                        out.append((f"http://{lb}:{ports[0]}{path}".replace(":80/", "/"), hosts))
            return out

        lbs = groups.get("loadbalancers", [])
        sites = {lb: served(lb) for lb in lbs}
        gunicorn = set(groups.get("app_gunicorn", []))
        lb, url, app = next(
            (lb, url, host)
            for lb in lbs
            for url, hosts in sites[lb]
            if url.endswith("/")
            for host in hosts
            if host in gunicorn
        )
        published = [p.split(":") for p in hostvars[lb].get("sandbox_published_ports", [])]
        outside = next((f"http://{p[0]}:{p[1]}" for p in published if p[-1] == "80"), None)
        redis = sorted(
            groups.get("redis", []),
            key=lambda h: hostvars[h].get("redis_replication_role") != "primary",
        )
        django = tuple(
            h
            for h in groups.get("appservers", [])
            if str(hostvars[h].get("python_app_src", "")).endswith("demo_django")
        )
        django_url = next(
            (
                url.split("/", 3)[0] + "//" + url.split("/", 3)[2] + "/db"
                for lb in lbs
                for url, hosts in sites[lb]
                if django and set(django) <= set(hosts)
            ),
            None,
        )
        workers = groups.get("workers", [])
        db = (groups.get("databases") or [None])[0]
        db_v = with_defaults(["postgresql"], hostvars[db]) if db else {}
        db_set = tuple(groups.get(db_v.get("postgresql_replication_group") or "", ()))
        monitors = groups.get(db_v.get("postgresql_monitor_group") or "", []) if db_set else []
        return cls(
            containers={h: hostvars[h].get("ansible_host", h) for h in groups.get("all", [])},
            loadgen=f"{hostvars[lb].get('sandbox_name_prefix', PREFIX)}-loadgen",
            lb=lb,
            url=url,
            outside=outside or "http://127.0.0.1:8080",
            app=app,
            units={h: units(h)[0] for h in groups.get("appservers", [])},
            redis=tuple(redis),
            sentinel_password=str(
                hostvars[redis[0]].get("redis_sentinel_password", "") if redis else ""
            ),
            worker=workers[0] if workers else None,
            worker_unit=units(workers[0])[0] if workers else None,
            db=db,
            db_set=db_set,
            db_monitor=monitors[0] if monitors else None,
            django=django,
            django_url=django_url,
            sites=sites,
        )


@cache
def cast() -> Cast:
    return Cast.read(INVENTORY)


def sh(
    *argv: str, check: bool = True, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, check=check, timeout=timeout, env=env
    )


def in_container(host: str, *argv: str, check: bool = True) -> str:
    return sh("docker", "exec", cast().containers[host], *argv, check=check).stdout.strip()


def site_urls(inventory: str = INVENTORY) -> list[str]:
    """Every site of every load balancer of ``inventory``, as a URL the load generator
    GETs (``http://<lb>:<port><path>``): a location of each site with a plain HTTP port
    (``/`` when the site has it), so a location left with no server during a drill shows
    as failed requests, whichever site it belongs to."""
    cast = Cast.read(inventory)
    return [url for lb in cast.sites for url, _ in cast.sites[lb]]


def _probe(url: str, clients: int, seconds: int, mode: str = "http") -> subprocess.Popen:
    """The load client on ``url``, started now (its program sent, its stdin closed);
    ``mode`` post: each client POSTs (webtier_probe.py keeps the writes answered 201)."""
    host, _, path = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    proc = subprocess.Popen(
        [
            "docker",
            "exec",
            "-i",
            cast().loadgen,
            "python3",
            "-",
            mode,
            name,
            port or "80",
            f"/{path}",
            str(clients),
            str(seconds),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # python3 - reads its whole program before it runs: every client starts at once.
    assert proc.stdin is not None
    proc.stdin.write(PROBE.read_text())
    proc.stdin.close()
    proc.stdin = None  # (communicate() would flush it)
    return proc


def under_load(
    url: str | list[str],
    seconds: int,
    action: Callable[[], dict[str, Any]],
    mode: str = "http",
    clients: int | None = None,
) -> dict[str, Any]:
    """Load ``url`` (or each of several, the CONNECTIONS clients shared between them, or
    ``clients``) for ``seconds`` while ``action`` runs (it starts 2 s in). ``load`` sums
    the counts of every URL; ``sites`` has each URL's own. ``mode`` post: the clients
    write, and ``acknowledged`` holds the id of every write answered 201."""
    urls = [url] if isinstance(url, str) else list(url)
    out: dict[str, Any] = {}

    def act() -> None:
        time.sleep(2)
        started = time.monotonic()
        try:
            out["action"] = action()
        except (subprocess.CalledProcessError, RuntimeError) as error:
            out["action"] = {"error": str(error), "output": getattr(error, "stdout", "")[-2000:]}
        out["action_seconds"] = round(time.monotonic() - started, 1)

    thread = threading.Thread(target=act)
    thread.start()
    clients = clients or max(CONNECTIONS // len(urls), 8)
    probes = [_probe(u, clients, seconds, mode) for u in urls]
    results = []
    for u, proc in zip(urls, probes, strict=True):
        stdout, stderr = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, stdout, stderr)
        results.append(
            {"url": u, "clients": clients, **json.loads(stdout.strip().splitlines()[-1])}
        )
    thread.join()
    total: dict[str, Any] = {"sent": 0, "ok": 0, "failed": 0, "errors": {}, "retried": {}}
    for r in results:
        for key in ("sent", "ok", "failed"):
            total[key] += r[key]
        for key in ("errors", "retried"):
            for kind, count in r.get(key, {}).items():
                total[key][kind] = total[key].get(kind, 0) + count
    if mode == "post":
        total["acknowledged"] = sorted(i for r in results for i in r.pop("acknowledged"))
    total["max_ms"] = max(r["max_ms"] for r in results)
    total["failing_s"] = max(r["failing_s"] for r in results)
    out["load"] = {
        "url": urls[0] if len(urls) == 1 else urls,
        "clients": clients * len(urls),
        "seconds": seconds,
        **total,
        "failed_percent": round(100 * total["failed"] / total["sent"], 3)
        if total["sent"]
        else None,
        "covered_the_action": out.get("action_seconds", 0) + 2 < seconds,
    }
    if len(urls) > 1:
        out["sites"] = results
    return out


def _wait_active(host: str, unit: str, limit: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if in_container(host, "systemctl", "is-active", unit, check=False) == "active":
            return round(time.monotonic() - started, 1)
        time.sleep(0.2)
    raise RuntimeError(f"{unit} on {host} not active after {limit} s")


def release_with_deploy_yml(release: str, *extra: str) -> subprocess.CompletedProcess:
    """playbooks/deploy.yml for ``release`` (extra: more of its arguments)."""
    return sh(
        "ansible-playbook",
        "-i",
        INVENTORY,
        "playbooks/deploy.yml",
        "-e",
        f"deploy_release={release}",
        *extra,
        check=False,
    )


def rolling() -> dict[str, Any]:
    release = time.strftime("drill-%Y%m%d%H%M%S")

    def deploy() -> dict[str, Any]:
        proc = release_with_deploy_yml(release)
        recap = [line for line in proc.stdout.splitlines() if " : ok=" in line]
        return {"release": release, "rc": proc.returncode, "recap": recap}

    return under_load(site_urls(INVENTORY), 900, deploy)


def main_pids(units: dict[str, str]) -> dict[str, str]:
    return {
        h: in_container(h, "systemctl", "show", "-p", "MainPID", "--value", u)
        for h, u in units.items()
    }


def reloads() -> dict[str, Any]:
    def ten() -> dict[str, Any]:
        for _ in range(10):
            in_container(cast().lb, "sh", "-c", "nginx -t -q && systemctl reload nginx")
            time.sleep(1)
        return {"reloads": 10}

    return under_load(cast().url, 30, ten)


def kill_master() -> dict[str, Any]:
    app, unit = cast().app, cast().units[cast().app]

    def kill() -> dict[str, Any]:
        (before,) = main_pids({app: unit}).values()
        in_container(app, "kill", "-KILL", before)
        time.sleep(0.5)
        back = _wait_active(app, unit)
        (after,) = main_pids({app: unit}).values()
        return {"host": app, "killed_pid": before, "new_pid": after, "active_again_after_s": back}

    return under_load(cast().url, 20, kill)


def _down_and_up(stop: tuple[str, ...]) -> Callable[[], dict[str, Any]]:
    """Take the Gunicorn host's container down with ``stop``, keep it down 15 s, start
    it again."""
    app = cast().app
    container = cast().containers[app]

    def down_up() -> dict[str, Any]:
        started = time.monotonic()
        sh(*stop, container)
        stopping = round(time.monotonic() - started, 1)
        time.sleep(15)
        sh("docker", "start", container)
        in_container(app, "systemctl", "is-system-running", "--wait", check=False)
        back = _wait_active(app, cast().units[app])
        return {
            "host": app,
            "stop": " ".join(stop),
            "stopping_s": stopping,
            "down_s": 15,
            "back_after_s": back,
        }

    return down_up


def host_down() -> dict[str, Any]:
    # The image's stop signal is SIGRTMIN+3: systemd halts, Gunicorn drains (TERM,
    # graceful_timeout 30 s) before the container exits; docker kills after 60 s.
    return under_load(cast().url, 45, _down_and_up(("docker", "stop", "-t", "60")))


def host_crash() -> dict[str, Any]:
    return under_load(cast().url, 40, _down_and_up(("docker", "kill")))


def counter_url() -> str:
    """``/counter`` (LB -> app -> Redis) on the drills' site."""
    return cast().url.rstrip("/") + "/counter"


def redis_restart() -> dict[str, Any]:
    def restart() -> dict[str, Any]:
        pids = main_pids(cast().units)
        in_container(redis_primary(), "systemctl", "restart", "redis-server")
        started = time.monotonic()
        recovered = None
        while time.monotonic() - started < 30:
            code = in_container(
                cast().lb,
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                # the load balancer's own address for it, from inside
                counter_url().replace(f"//{cast().lb}", "//127.0.0.1", 1),
                check=False,
            )
            if code == "200":
                recovered = round(time.monotonic() - started, 1)
                break
            time.sleep(0.2)
        after = main_pids(cast().units)
        return {"counter_200_again_after_s": recovered, "app_processes_restarted": pids != after}

    return under_load(counter_url(), 20, restart)


def redis_primary() -> str:
    """The Redis host a Sentinel names primary: asked of each Redis host in turn, the
    configured primary last (the failover drill stops it); that one without Sentinels."""
    hosts = cast().redis
    for host in (*hosts[1:], *hosts[:1]):
        out = sh(
            "docker",
            "exec",
            "-e",
            f"REDISCLI_AUTH={cast().sentinel_password}",
            cast().containers[host],
            "redis-cli",
            "-p",
            "26379",
            "--no-auth-warning",
            "SENTINEL",
            "get-master-addr-by-name",
            "webtier",
            check=False,
        ).stdout.split()
        if out:
            by_container = {c: h for h, c in cast().containers.items()}
            return by_container.get(out[0], out[0])
    return hosts[0]


def redis_failover() -> dict[str, Any]:
    def fail_over() -> dict[str, Any]:
        pids = main_pids(cast().units)
        old = redis_primary()
        in_container(old, "systemctl", "stop", "redis-server")
        started = time.monotonic()
        new = old
        while new == old and time.monotonic() - started < 60:
            time.sleep(0.2)
            new = redis_primary()
        promoted = round(time.monotonic() - started, 1)
        time.sleep(5)
        in_container(old, "systemctl", "start", "redis-server")
        after = main_pids(cast().units)
        return {
            "old_primary": old,
            "new_primary": new,
            "promoted_after_s": promoted,
            "app_processes_restarted": pids != after,
        }

    return under_load(counter_url(), 30, fail_over)


def broken_template() -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="webtier-broken-"))
    try:
        shutil.copytree(ROOT / "templates", work / "templates")
        conf = work / "templates/etc/nginx/nginx.conf.j2"
        conf.write_text(
            conf.read_text().replace("events {", "events {\n    this_is_not_a_directive on;", 1)
        )

        def push() -> dict[str, Any]:
            before = in_container(cast().lb, "sha256sum", "/etc/nginx/nginx.conf")
            proc = sh(
                "ansible-playbook",
                "-i",
                INVENTORY,
                "site.yml",
                "--tags",
                "lb",
                check=False,
                env={**os.environ, "WEBTIER_TEMPLATES": f"{work}/templates"},
            )
            after = in_container(cast().lb, "sha256sum", "/etc/nginx/nginx.conf")
            refused = "this_is_not_a_directive" in proc.stdout + proc.stderr
            return {
                "play_rc": proc.returncode,
                "nginx_t_refused_it": refused,
                "live_config_unchanged": before == after,
            }

        return under_load(cast().url, 150, push)
    finally:
        shutil.rmtree(work)


#: The demo's CPU-bound job (burn(n): about 0.2 s of CPU).
JOB_N = 2_000_000


def get_json(path: str) -> tuple[int, dict[str, Any]]:
    """GET through the environment's published load balancer: (status, JSON body)."""
    try:
        with urllib.request.urlopen(f"{cast().outside}{path}", timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError as error:
        return 0, {"error": type(error).__name__}


def _enqueue() -> str | None:
    status, body = get_json(f"/work?n={JOB_N}&mode=queue")
    return body.get("url") if status == 202 else None


def _await_jobs(jobs: list[str], limit: float) -> dict[str, Any]:
    """Poll every job until all answered 200 or ``limit`` seconds passed."""
    started, pending = time.monotonic(), set(jobs)
    while pending and time.monotonic() - started < limit:
        for job in list(pending):
            if get_json(job)[0] == 200:
                pending.discard(job)
        time.sleep(0.5)
    return {
        "completed": len(jobs) - len(pending),
        "lost": len(pending),
        "all_done_after_s": round(time.monotonic() - started, 1) if not pending else None,
    }


def _received_twice(since: str, jobs: list[str]) -> int:
    """Jobs the worker's journal shows received more than once since ``since``."""
    worker, unit = worker_cast()
    log = in_container(worker, "journalctl", "-u", unit, "--since", since, "-o", "cat", check=False)
    ids = [job.rsplit("/", 1)[1] for job in jobs]
    return sum(log.count(f"[{i}] received") > 1 for i in ids)


def worker_cast() -> tuple[str, str]:
    """The worker host the job drills act on, and its unit."""
    if not (cast().worker and cast().worker_unit):
        raise RuntimeError(f"{INVENTORY} has no host in the workers group")
    return cast().worker, cast().worker_unit


def worker_kill() -> dict[str, Any]:
    """SIGKILL to the whole worker unit mid-batch. systemd starts it again; the tasks it
    held unacknowledged are redelivered once the visibility timeout has passed (at
    kombu's next sweep of the broker: a worker's start, then every 100 s)."""
    worker, unit = worker_cast()
    since = in_container(worker, "date", "+@%s")
    (pid,) = main_pids({worker: unit}).values()
    jobs = [job for job in (_enqueue() for _ in range(40)) if job]
    time.sleep(1.5)
    in_container(worker, "systemctl", "kill", "--signal=KILL", unit)
    killed = time.monotonic()
    back = _wait_active(worker, unit)
    result = _await_jobs(jobs, 600)
    return {
        "action": {
            "host": worker,
            "sent": len(jobs),
            "killed_pid": pid,
            "active_again_after_s": back,
            **result,
            "done_after_kill_s": round(time.monotonic() - killed, 1),
            "redelivered": _received_twice(since, jobs),
        }
    }


def worker_release() -> dict[str, Any]:
    """A new release of the worker tier (the role: a new release directory, the units
    restarted with a warm shutdown) while jobs arrive at 5 a second."""
    release = time.strftime("drill-%Y%m%d%H%M%S")
    worker, unit = worker_cast()
    (pid,) = main_pids({worker: unit}).values()
    jobs: list[str] = []
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            if job := _enqueue():
                jobs.append(job)
            time.sleep(0.2)

    sender = threading.Thread(target=stream)
    sender.start()
    started = time.monotonic()
    proc = sh(
        "ansible-playbook",
        "-i",
        INVENTORY,
        "playbooks/workers.yml",
        "-e",
        f"python_app_release={release}",
        check=False,
    )
    took = round(time.monotonic() - started, 1)
    time.sleep(3)
    stop.set()
    sender.join()
    (after,) = main_pids({worker: unit}).values()
    return {
        "action": {
            "release": release,
            "play_rc": proc.returncode,
            "play_s": took,
            "sent": len(jobs),
            "workers_restarted": pid != after,
            **_await_jobs(jobs, 300),
        }
    }


#: The migration a release of the Django demo adds (a nullable column: the release that
#: still runs reads the table unchanged while the next one is rolled out).
MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = (("notes", "0001_initial"),)
    operations = (
        migrations.AddField(
            "note", "tag", models.CharField(max_length=40, null=True, blank=True)
        ),
    )
"""


def add_a_migration(src: Path) -> None:
    """The Django demo's next release in ``src`` (a copy of apps/demo_django): a nullable
    column and its migration, which the running release works with (notes/0002)."""
    models = src / "notes/models.py"
    models.write_text(
        models.read_text().replace(
            "    created = models.DateTimeField(auto_now_add=True)\n",
            "    created = models.DateTimeField(auto_now_add=True)\n"
            "    tag = models.CharField(max_length=40, null=True, blank=True)\n",
        )
    )
    (src / "notes/migrations/0002_note_tag.py").write_text(MIGRATION)


def psql(container: str, sql: str, database: str = "") -> str:
    """``sql`` as PostgreSQL's superuser on the database host ``container`` (over its
    local socket), its answer unaligned."""
    where = ["-d", database] if database else []
    argv = ["docker", "exec", container, "runuser", "-u", "postgres", "--", "psql", "-XAt"]
    return sh(*argv, *where, "-c", sql).stdout.strip()


def migration_applied(container: str) -> int:
    """How many times add_a_migration's migration was applied on the database host."""
    sql = "SELECT count(*) FROM django_migrations WHERE app = 'notes' AND name = '0002_note_tag'"
    return int(psql(container, sql, "notes") or 0)


def migration() -> dict[str, Any]:
    django, url, db = cast().django, cast().django_url, cast().db
    if not (django and url and db):
        raise RuntimeError(f"{INVENTORY} serves no Django demo behind a load balancer")
    release = time.strftime("drill-%Y%m%d%H%M%S")
    src = Path(tempfile.mkdtemp(prefix="webtier-django-release-"))
    shutil.copytree(ROOT / "apps/demo_django", src, dirs_exist_ok=True)
    add_a_migration(src)

    def deploy() -> dict[str, Any]:
        proc = release_with_deploy_yml(
            release, "-e", f"python_app_src={src}", "--limit", ",".join(django)
        )
        lines = proc.stdout.splitlines()
        ran = [
            line.strip()
            for i, line in enumerate(lines)
            if "Run the release's commands" in line
            for line in lines[i + 1 : i + 4]
            if line.startswith(("changed:", "skipping:", "ok:"))
        ]
        return {
            "release": release,
            "rc": proc.returncode,
            "commands": ran,
            "migration_applied_times": migration_applied(cast().containers[db]),
            "recap": [line for line in lines if " : ok=" in line],
        }

    try:
        return under_load(url, 150, deploy)
    finally:
        shutil.rmtree(src, ignore_errors=True)


def db_states() -> dict[str, str]:
    """Each host of the database set and the state its monitor reports for it."""
    c = cast()
    rows = psql(
        c.containers[c.db_monitor or ""],
        "SELECT nodename, reportedstate FROM pgautofailover.node",
        "pg_auto_failover",
    )
    return dict(line.split("|", 1) for line in rows.splitlines())


def _primary(lost: str = "") -> str | None:
    """The host of the set the monitor reports as taking writes, another than ``lost``
    first (the monitor keeps the last state a host reported: a lost primary's stays
    "primary")."""
    taking = [h for h, s in db_states().items() if s in ("primary", "wait_primary", "single")]
    return next((h for h in taking if h != lost), taking[0] if taking else None)


def _settled() -> tuple[str, str] | None:
    """(primary, standby) when the set has exactly one of each, else None."""
    states = db_states()
    primaries = [h for h, s in states.items() if s == "primary"]
    standbys = [h for h, s in states.items() if s == "secondary"]
    return (primaries[0], standbys[0]) if len(primaries) == 1 and len(standbys) == 1 else None


def _poll(check: Callable[[], Any], limit: float, every: float = 0.2) -> float | None:
    """Seconds until ``check`` is true, or None when ``limit`` passed first."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if check():
            return round(time.monotonic() - started, 1)
        time.sleep(every)
    return None


def _db_failover(how: str) -> Callable[[], dict[str, Any]]:
    """64 clients write through the Django site (POST /notes) while the set's primary is
    lost ``how``: kill (its container killed), stop (its container stopped) or process
    (its server's postmaster killed, the host up). Measured: the seconds until a write
    through the load balancer is answered 201 again, the failed writes, and how many
    writes answered 201 the new primary lacks; then the old primary back, the seconds
    until it is the standby again."""

    def drill() -> dict[str, Any]:
        c = cast()
        if not (c.db_set and c.db_monitor and c.django_url):
            raise RuntimeError(f"{INVENTORY} has no replicated database set behind a Django site")
        settled = _settled()
        if settled is None:
            raise RuntimeError(f"the set is not one primary and one standby: {db_states()}")
        old = settled[0]
        notes = c.django_url.removesuffix("/db") + "/notes"
        inside = notes.replace(f"//{c.lb}", "//127.0.0.1", 1)

        def written() -> bool:
            code = in_container(
                c.lb, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                "--max-time", "3", inside, check=False,
            )  # fmt: skip
            return code == "201"

        def lose() -> dict[str, Any]:
            if how == "process":
                in_container(old, "pkill", "-9", "-o", "-u", "postgres", "-x", "postgres")
            else:
                sh("docker", how, c.containers[old])
            started = time.monotonic()
            back = promoted = None
            # until writes are back and another host is primary (or 20 s more: a server
            # restarted in place is no failover)
            while time.monotonic() - started < 90:
                if promoted is None and _primary(old) not in (None, old):
                    promoted = round(time.monotonic() - started, 1)
                if back is None and written():
                    back = round(time.monotonic() - started, 1)
                if back is not None and (
                    promoted is not None or time.monotonic() - started > back + 20
                ):
                    break
                time.sleep(0.2)
            return {
                "lost": f"{how} {old}",
                "writes_201_again_after_s": back,
                "another_host_primary_after_s": promoted,
                "primary_now": _primary(old),
            }

        out = under_load(notes, 40, lose, mode="post", clients=CONNECTIONS)
        acknowledged = out["load"].pop("acknowledged")
        out["load"]["acknowledged"] = len(acknowledged)
        if how != "process":
            sh("docker", "start", c.containers[old])
        rejoined = _poll(lambda: _settled() is not None, 180, every=1)
        primary = (_settled() or (old,))[0]
        present = set()
        if acknowledged:
            rows = psql(
                c.containers[primary],
                f"SELECT id FROM notes_note WHERE id >= {min(acknowledged)}",
                "notes",
            )
            present = {int(i) for i in rows.split()}
        missing = sorted(set(acknowledged) - present)
        out["action"] |= {
            "set_settled_again_after_s": rejoined,
            "states_after": db_states(),
            "acknowledged_missing_on_primary": len(missing),
            "missing_ids": missing[:20],
        }
        return out

    return drill


DRILLS: dict[str, Callable[[], dict[str, Any]]] = {
    "rolling": rolling,
    "reloads": reloads,
    "kill-master": kill_master,
    "host-down": host_down,
    "host-crash": host_crash,
    "redis-restart": redis_restart,
    "redis-failover": redis_failover,
    "broken-template": broken_template,
    "worker-kill": worker_kill,
    "worker-release": worker_release,
    "migration": migration,
    "db-failover": _db_failover("kill"),
    "db-failover-stop": _db_failover("stop"),
    "db-server-kill": _db_failover("process"),
}


def missed(
    result: dict[str, Any],
    max_error_rate: float | None = None,
    min_rps: float | None = None,
    max_latency_ms: float | None = None,
) -> list[str]:
    """What one drill's result misses of the thresholds it was held to. Page-load drills:
    failed / sent, answered per second, the slowest answer. Job drills: jobs lost / sent."""
    name, out = result["drill"], []
    load = result.get("load")
    if load is None:
        sent = result["action"].get("sent") or 0
        lost = result["action"].get("lost", 0)
        if max_error_rate is not None and sent and lost / sent > max_error_rate:
            out.append(f"{name}: {lost} of {sent} jobs lost > {max_error_rate:.2%}")
        return out
    rate = load["failed"] / load["sent"] if load["sent"] else 1.0
    rps = (load["sent"] - load["failed"]) / load["seconds"]
    if max_error_rate is not None and rate > max_error_rate:
        out.append(
            f"{name}: {load['failed']} of {load['sent']} failed ({rate:.2%}) > {max_error_rate:.2%}"
        )
    if min_rps is not None and rps < min_rps:
        out.append(f"{name}: {rps:,.0f} answered/s < {min_rps:,.0f}")
    if max_latency_ms is not None and load["max_ms"] > max_latency_ms:
        out.append(f"{name}: slowest {load['max_ms']:,} ms > {max_latency_ms:,.0f} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    global INVENTORY  # noqa: PLW0603 (every drill reads the one inventory this run names)
    parser = argparse.ArgumentParser(
        prog="python -m webtier.ops.drills", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("drill", choices=[*DRILLS, "all"])
    parser.add_argument(
        "--inventory", default=INVENTORY, help="the environment (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "drills")
    parser.add_argument("--max-error-rate", type=float, help="fail above this (0.001 = 0.1%%)")
    parser.add_argument("--min-rps", type=float, help="fail below this many answers a second")
    parser.add_argument("--max-latency-ms", type=float, help="fail when a request took longer")
    args = parser.parse_args(argv)
    INVENTORY = args.inventory
    misses: list[str] = []
    sh("ansible-playbook", "-i", INVENTORY, "playbooks/loadtest.yml", "--tags", "loadgen")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in DRILLS if args.drill == "all" else [args.drill]:
        result = {"drill": name, **DRILLS[name]()}
        misses += missed(result, args.max_error_rate, args.min_rps, args.max_latency_ms)
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        if "load" not in result:  # the worker drills count jobs, not page loads
            print(f"{name}: {json.dumps(result['action'])}", flush=True)
            continue
        load = result["load"]
        print(
            f"{name}: sent {load['sent']}, failed {load['failed']} ({load['failed_percent']}%), "
            f"by kind {load['errors']} over {load['failing_s']} s, retried {load['retried']}, "
            f"slowest {load['max_ms']} ms; "
            f"action {json.dumps(result['action'])} in {result.get('action_seconds')} s",
            flush=True,
        )
    for miss in misses:
        print(f"threshold missed: {miss}", file=sys.stderr)
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
