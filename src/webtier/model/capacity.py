"""The capacity model: what each tier of an inventory holds, and where the layers disagree.

The sizing notes this stack comes from say "concurrency = workers x worker_connections"
and "QPS = concurrency / mean latency". Real servers count differently, and five layers
must agree for either figure to hold. From the variables every host will run with (its
inventory over its roles' defaults) this module computes, per host and per tier:

- **concurrency**, the way each server really behaves: Gunicorn ``sync`` = workers;
  ``gthread`` = workers x threads; ``gevent`` and ``asgi`` = workers x
  worker_connections; uWSGI = processes x threads; nginx = workers x
  worker_connections, halved because every proxied client also holds an upstream
  connection. Each is capped by the descriptors (NOFILE) a process may open;
- **queue**: the accept queue each listener gets (its backlog, cut to somaxconn);
- **limit** and **headroom**: how far the descriptor limits would let it go;
- the **bottleneck** tier and a **QPS estimate** for a mean latency (Little's law);
- the **database tier** (PostgreSQL behind PgBouncer): the clients PgBouncer accepts
  (``max_client_conn``, which must hold every thread, greenlet and worker process of
  the hosts whose apps name it) over the server connections its pools may open (each
  database's pool and reserve), which must fit PostgreSQL's ``max_connections`` less
  what is kept for the superuser and for maintenance;
- the **worker tier** (Celery, one unit per queue): processes per queue and, for a queue
  whose ``task_seconds`` (mean CPU time of a task, measured) is known, the tasks per
  second it is served at (its processes, at most the host's CPUs, over that time) and,
  for an arrival rate, how fast the queue grows or drains;
- every **finding** (a cross-layer inconsistency): the host, the variable, its value,
  the limit it breaks and the fix.

``check()`` is what the preflight play runs before any host changes;
``python -m webtier.model.capacity inventory/<env>`` prints the model's view as a table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from webtier.model import cpu, derive
from webtier.model.derive import FD_OVERHEAD, REDIS_FD_OVERHEAD
from webtier.model.inventory import with_defaults

#: CPU count assumed for ``auto`` when the inventory does not say (``webtier_cpus``).
from webtier.model.schema import MAX_BACKLOG, Finding, parse_count
from webtier.model.topology import roles_of

DEFAULT_CPUS = cpu.DEFAULT_CPUS


@dataclass
class HostCapacity:
    host: str
    tier: str  # lb, app or redis
    server: str  # what serves there: "nginx", "gunicorn gthread", "uwsgi", "redis"
    concurrency: int  # requests (app), client connections (lb) or clients (redis) at once
    formula: str  # how concurrency was counted, with the figures
    queue: int  # the accept queue the kernel grants its listener
    limit: int  # what the descriptor limits would allow at most
    cap: str  # what sets that limit
    processes: int = 1
    per_process: int = 0  # concurrency of one worker process (threads, greenlets, ...)
    held: int = 0  # connections the host's workers hold open at most (gthread, gevent)
    #: worker tier: per queue, its processes and the tasks per second it is served at
    #: (None where the queue's task_seconds is not known)
    queues: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headroom(self) -> float:
        return self.limit / self.concurrency if self.concurrency else 0.0


@dataclass
class Model:
    hosts: list[HostCapacity] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def tier(self, name: str) -> list[HostCapacity]:
        return [h for h in self.hosts if h.tier == name]

    def concurrency(self, tier: str) -> int:
        return sum(h.concurrency for h in self.tier(tier))

    @property
    def bottleneck(self) -> str | None:
        """The request path's narrowest tier: load balancers or app servers."""
        tiers = [t for t in ("lb", "app") if self.tier(t)]
        return min(tiers, key=self.concurrency) if tiers else None

    @property
    def stack_concurrency(self) -> int:
        """Requests the stack works on at once: its narrowest tier's concurrency."""
        return self.concurrency(self.bottleneck) if self.bottleneck else 0

    def path_concurrency(self, app_hosts: Sequence[str]) -> int:
        """Requests one site works on at once: its app hosts' concurrency, or the load
        balancers' if smaller."""
        app = sum(h.concurrency for h in self.tier("app") if h.host in app_hosts)
        lb = self.concurrency("lb")
        return min(app, lb) if lb else app

    def qps(self, mean_latency_s: float) -> float:
        """Little's law: the throughput that concurrency sustains at this mean latency."""
        return self.stack_concurrency / mean_latency_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "hosts": [{**asdict(h), "headroom": round(h.headroom, 2)} for h in self.hosts],
            "tiers": {
                t: self.concurrency(t)
                for t in ("lb", "app", "redis", "worker", "db")
                if self.tier(t)
            },
            "bottleneck": self.bottleneck,
            "stack_concurrency": self.stack_concurrency,
            "findings": [str(f) for f in self.findings],
        }


def _int(value: Any, host: str, name: str, findings: list[Finding], auto: int | None = None):
    """``value`` as a count (``auto`` gives ``auto``), by the model's rule for counts; a
    finding and None when it is not one (preflight stops such a value before this)."""
    try:
        count = parse_count(value, auto_allowed=auto is not None)
    except ValueError as error:
        rule, _, fix = str(error).partition("; ")
        findings.append(Finding(host, name, value, rule, fix))
        return None
    return auto if count == "auto" else count


@dataclass(frozen=True)
class Kernel:
    """The limits a host really grants, read on it (``webtier.checks.live``): the servers'
    checks then hold each setting against these instead of the planned ones."""

    somaxconn: int
    tcp_max_syn_backlog: int
    #: The NOFILE hard limit a service started now gets.
    nofile_hard: int
    cpus: int


class _Host:
    """One host's kernel limits, shared by the checks of every server on it: the
    inventory's plan (kernel_tuning_*, webtier_cpus), or what the host grants."""

    def __init__(
        self,
        host: str,
        hostvars: Mapping[str, Any],
        findings: list[Finding],
        kernel: Kernel | None = None,
    ):
        self.name = host
        self.vars = hostvars
        self.findings = findings
        if kernel is not None:
            self.somaxconn, self.syn_backlog = kernel.somaxconn, kernel.tcp_max_syn_backlog
            self.nofile, self.cpus = kernel.nofile_hard, kernel.cpus
            self.nofile_name = f"the NOFILE limit services get on {host}, {self.nofile}"
            self.on = f" on {host}"
            return
        plan = with_defaults(["kernel_tuning"], hostvars)
        self.somaxconn = self.count(plan, "kernel_tuning_somaxconn") or 0
        self.syn_backlog = self.count(plan, "kernel_tuning_tcp_max_syn_backlog") or 0
        self.nofile = self.count(plan, "kernel_tuning_nofile") or 0
        self.cpus = self.count({"webtier_cpus": DEFAULT_CPUS, **hostvars}, "webtier_cpus") or 1
        self.nofile_name = f"the NOFILE limit kernel_tuning_nofile={self.nofile}"
        self.on = ""

    def count(self, values: Mapping[str, Any], name: str, auto: int | None = None) -> int | None:
        """``values[name]`` as an int >= 1 (``auto`` gives ``auto``); None and a finding
        otherwise."""
        return _int(values[name], self.name, name, self.findings, auto)

    def flag(self, variable: str, value: Any, limit: str, fix: str) -> None:
        self.findings.append(Finding(self.name, variable, value, limit, fix))

    def queue(self, variable: str, backlog: int) -> int:
        """The accept queue a listener asking for ``backlog`` gets, flagging a cut."""
        if backlog > self.somaxconn:
            raise_to = (
                f" or raise kernel_tuning_somaxconn to {backlog}"
                if backlog <= MAX_BACKLOG
                else f" (the kernel allows at most {MAX_BACKLOG})"
            )
            self.flag(
                variable,
                backlog,
                f"net.core.somaxconn={self.somaxconn}{self.on} (the kernel silently cuts "
                "the queue)",
                f"lower {variable} to {min(self.somaxconn, MAX_BACKLOG)}{raise_to}",
            )
        elif backlog > self.syn_backlog:
            self.flag(
                variable,
                backlog,
                f"net.ipv4.tcp_max_syn_backlog={self.syn_backlog}{self.on} (half-open "
                "connections past it are dropped)",
                f"raise kernel_tuning_tcp_max_syn_backlog to {backlog}",
            )
        return min(backlog, self.somaxconn)

    def descriptors(self, variable: str, value: int, need: int, what: str) -> None:
        if need > self.nofile:
            self.flag(
                variable,
                value,
                f"{self.nofile_name} ({what} need {need})",
                f"lower {variable} or raise kernel_tuning_nofile to {need}",
            )


def _gunicorn(h: _Host) -> HostCapacity | None:
    v = with_defaults(["gunicorn"], h.vars)
    kind = v["gunicorn_worker_class"]
    names = ("gunicorn_workers", "gunicorn_threads", "gunicorn_worker_connections")
    backlog = h.count(v, "gunicorn_backlog")
    if None in (backlog, *(h.count(v, name, 0) for name in names)):
        return None
    sizes = derive.gunicorn_sizes(kind, *(v[name] for name in names), h.cpus)
    workers, threads, conns = sizes["workers"], sizes["threads"], sizes["worker_connections"]
    per_process, formula = {
        "sync": (1, f"{workers} sync workers"),
        "gthread": (threads, f"{workers} workers x {threads} threads"),
    }.get(kind, (conns, f"{workers} workers x {conns} worker_connections"))
    # A gthread worker holds up to worker_connections sockets; the others one per request.
    held = conns if kind in ("gthread", "gevent", "asgi") else 1
    h.descriptors(
        "gunicorn_worker_connections",
        conns,
        held + FD_OVERHEAD,
        "a worker's connections plus its own descriptors",
    )
    limit = workers * (
        max(h.nofile - FD_OVERHEAD, 0) if kind in ("gevent", "asgi") else per_process
    )
    return HostCapacity(
        h.name,
        "app",
        f"gunicorn {kind}",
        min(workers * per_process, limit),
        formula,
        h.queue("gunicorn_backlog", backlog),
        limit,
        "NOFILE per worker" if kind in ("gevent", "asgi") else "threads are fixed",
        processes=workers,
        per_process=per_process,
        held=workers * held,
    )


def _uwsgi(h: _Host) -> HostCapacity | None:
    v = with_defaults(["uwsgi"], h.vars)
    threads = h.count(v, "uwsgi_threads")
    listen = h.count(v, "uwsgi_listen")
    if None in (h.count(v, "uwsgi_processes", 0), threads, listen):
        return None
    processes = derive.uwsgi_processes(v["uwsgi_processes"], h.cpus)
    h.descriptors("uwsgi_threads", threads, threads + FD_OVERHEAD, "a process's requests")
    return HostCapacity(
        h.name,
        "app",
        "uwsgi",
        processes * threads,
        f"{processes} processes x {threads} threads",
        h.queue("uwsgi_listen", listen),
        processes * threads,
        "threads are fixed",
        processes=processes,
        per_process=threads,
    )


def _nginx(h: _Host) -> HostCapacity | None:
    v = with_defaults(["nginx"], h.vars)
    workers = h.count(v, "nginx_worker_processes", h.cpus)
    conns = h.count(v, "nginx_worker_connections")
    backlog = h.count(v, "nginx_listen_backlog")
    if None in (workers, conns, backlog):
        return None
    if h.count(v, "nginx_worker_rlimit_nofile", 0) is None:
        return None
    rlimit = derive.nginx_rlimit_nofile(v["nginx_worker_rlimit_nofile"], conns)
    if rlimit < conns + FD_OVERHEAD:
        h.flag(
            "nginx_worker_rlimit_nofile",
            rlimit,
            f"nginx_worker_connections={conns} + {FD_OVERHEAD} (every connection, client "
            "or upstream, is a descriptor)",
            f"raise nginx_worker_rlimit_nofile to {conns + FD_OVERHEAD} or use auto",
        )
    h.descriptors("nginx_worker_rlimit_nofile", rlimit, rlimit, "nginx workers")
    # Each proxied client holds two connections: its own and one to an upstream.
    usable = min(conns, max(min(rlimit, h.nofile) - FD_OVERHEAD, 0))
    return HostCapacity(
        h.name,
        "lb",
        "nginx",
        workers * conns // 2,
        f"{workers} workers x {conns} worker_connections / 2 (proxied)",
        h.queue("nginx_listen_backlog", backlog),
        workers * usable // 2,
        f"worker_rlimit_nofile {rlimit}, NOFILE {h.nofile}",
        processes=workers,
        per_process=conns // 2,
    )


def _redis(h: _Host) -> HostCapacity | None:
    v = with_defaults(["redis"], h.vars)
    maxclients = h.count(v, "redis_maxclients")
    backlog = h.count(v, "redis_tcp_backlog")
    if None in (maxclients, backlog):
        return None
    h.descriptors(
        "redis_maxclients",
        maxclients,
        maxclients + REDIS_FD_OVERHEAD,
        "Redis's clients plus its own descriptors",
    )
    return HostCapacity(
        h.name,
        "redis",
        "redis",
        maxclients,
        f"maxclients {maxclients}",
        h.queue("redis_tcp_backlog", backlog),
        max(h.nofile - REDIS_FD_OVERHEAD, 0),
        f"NOFILE {h.nofile}",
    )


#: Broker and result-store connections a Celery worker process may hold.
CELERY_REDIS_CONNECTIONS = 2


def served_per_s(processes: int, cpus: int, task_seconds: float | None) -> float | None:
    """Tasks per second a queue is served at: CPU-bound tasks run on at most one CPU
    each, so its processes beyond the host's CPUs add nothing."""
    return min(processes, cpus) / task_seconds if task_seconds else None


def _celery(h: _Host) -> HostCapacity | None:
    v = with_defaults(["celery_worker"], h.vars)
    given = v["celery_worker_queues"]
    if any("concurrency" in q and h.count(q, "concurrency", h.cpus) is None for q in given):
        return None
    queues = [
        {
            "name": queue["name"],
            "processes": queue["concurrency"],
            "cpus": h.cpus,
            "task_seconds": queue.get("task_seconds"),
            "served_per_s": served_per_s(queue["concurrency"], h.cpus, queue.get("task_seconds")),
        }
        # auto resolved by the rule the roles use (webtier.model.derive)
        for queue in derive.celery_queues(given, h.cpus)
    ]
    processes = sum(q["processes"] for q in queues)
    return HostCapacity(
        h.name,
        "worker",
        "celery",
        processes,
        " + ".join(f"{q['processes']} ({q['name']})" for q in queues) + " processes",
        0,
        processes,
        f"{h.cpus} CPUs",
        processes=processes,
        per_process=1,
        queues=queues,
    )


def _postgresql(h: _Host) -> HostCapacity | None:
    """The database tier: PgBouncer's clients (its concurrency) over the server
    connections its pools may open, which must fit the server's max_connections."""
    v = with_defaults(["postgresql"], h.vars)
    names = (
        "postgresql_max_connections",
        "postgresql_pgbouncer_max_client_conn",
        "postgresql_pgbouncer_default_pool_size",
        "postgresql_pgbouncer_listen_backlog",
    )
    counts = [h.count(v, n) for n in names]
    if None in counts:
        return None
    max_connections, clients, pool, backlog = counts
    databases = len(v["postgresql_databases"])
    reserve = int(v["postgresql_pgbouncer_reserve_pool_size"])
    servers = derive.pgbouncer_server_connections(databases, pool, reserve)
    kept = int(v["postgresql_superuser_reserved_connections"]) + int(
        v["postgresql_reserved_connections"]
    )
    if servers + kept > max_connections:
        fit = max((max_connections - kept) // max(databases, 1) - reserve, 0)
        h.flag(
            "postgresql_pgbouncer_default_pool_size",
            pool,
            f"postgresql_max_connections={max_connections}: PgBouncer may open {servers} "
            f"server connections ({databases} database(s) x ({pool} + reserve {reserve})) and "
            f"{kept} are kept for the superuser and maintenance (past it, the server refuses "
            "PgBouncer and clients wait until query_wait_timeout)",
            f"lower postgresql_pgbouncer_default_pool_size to {fit} or raise "
            f"postgresql_max_connections to {servers + kept}",
        )
    nofile = derive.pgbouncer_nofile(clients, servers)
    h.descriptors(
        "postgresql_pgbouncer_max_client_conn",
        clients,
        nofile,
        "PgBouncer's clients, its server connections and its own descriptors",
    )
    return HostCapacity(
        h.name,
        "db",
        "pgbouncer",
        clients,
        f"max_client_conn {clients} over {servers} server connections "
        f"({databases} x ({pool} + {reserve}))",
        h.queue("postgresql_pgbouncer_listen_backlog", backlog),
        max(h.nofile - servers - derive.FD_OVERHEAD, 0),
        f"NOFILE {h.nofile}",
        held=servers,
    )


SERVERS = {
    "nginx": _nginx,
    "gunicorn": _gunicorn,
    "uwsgi": _uwsgi,
    "redis": _redis,
    "celery_worker": _celery,
    "postgresql": _postgresql,
}


def on_host(
    host: str, hostvars: Mapping[str, Any], roles: Sequence[str], kernel: Kernel
) -> list[Finding]:
    """The checks of every server ``host`` runs, against the limits it really grants."""
    findings: list[Finding] = []
    h = _Host(host, hostvars, findings, kernel)
    for role, server in SERVERS.items():
        if role in roles:
            server(h)
    return findings


def model(hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]) -> Model:
    """The capacity of every host and tier, and every inconsistency between the layers."""
    result = Model()
    for name, variables in hostvars.items():
        host = _Host(name, variables, result.findings)
        roles = roles_of(name, groups)
        for role, server in SERVERS.items():
            if role in roles:
                capacity = server(host)
                if capacity is not None:
                    result.hosts.append(capacity)
    _cross_tier(result)
    _database_clients(result, hostvars, groups)
    return result


def _database_clients(
    result: Model,
    hostvars: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
) -> None:
    """Every thread, greenlet or worker process of the hosts whose apps name a database
    tier (python_app_database_group) may hold a connection to its PgBouncer at once
    (Django keeps one per thread): each PgBouncer of the tier must accept them all
    (the app's URL names every host and its connections go to whichever takes writes,
    so after a failover all of them reach one host)."""
    clients: dict[str, list[tuple[str, int]]] = {}
    for h in result.tier("app") + result.tier("worker"):
        group = with_defaults(["python_app"], hostvars[h.host])["python_app_database_group"]
        if group:
            clients.setdefault(group, []).append((h.host, h.concurrency))
    for group, users in clients.items():
        total = sum(n for _, n in users)
        for db in (h for h in result.tier("db") if h.host in groups.get(group, ())):
            if db.concurrency < total:
                who = ", ".join(f"{host} {n}" for host, n in users)
                result.findings.append(
                    Finding(
                        db.host,
                        "postgresql_pgbouncer_max_client_conn",
                        db.concurrency,
                        f"the {total} connections the app tier and the workers may hold at "
                        f"once ({who}: each thread, greenlet or worker process its own)",
                        f"raise postgresql_pgbouncer_max_client_conn to {total}",
                    )
                )


def _cross_tier(result: Model) -> None:
    lb, app, redis = (result.tier(t) for t in ("lb", "app", "redis"))
    workers = result.tier("worker")
    # The load balancers may have this many requests in flight to the app tier at once;
    # what the app servers are not working on waits in their accept queues. Past both,
    # the kernel drops the connection and the client sees a 502/504.
    if lb and app:
        in_flight = sum(h.concurrency for h in lb)
        holds = sum(h.concurrency + h.queue for h in app)
        if holds < in_flight:
            short = in_flight - holds
            for h in app:
                variable = "uwsgi_listen" if h.server == "uwsgi" else "gunicorn_backlog"
                per_host = h.queue + -(-short // len(app))
                result.findings.append(
                    Finding(
                        h.host,
                        variable,
                        h.queue,
                        f"the load balancers' {in_flight} proxied connections: the app tier "
                        f"works on or queues only {holds}",
                        f"raise {variable} (and somaxconn) to {per_host} on every app host, "
                        "add app capacity, or lower nginx_worker_connections",
                    )
                )
    # A gthread or gevent worker that holds worker_connections sockets stops polling
    # them: idle keep-alive connections the load balancer has already closed then stay
    # until Gunicorn's keepalive timeout, the worker accepts nothing, and its accept
    # queue fills. Workers do not share connections evenly (whichever is idle accepts),
    # so each worker must be able to hold its host's share of the proxied connections.
    if lb and app:
        share = -(-sum(h.concurrency for h in lb) // len(app))
        for h in app:
            per_worker = h.held // h.processes if h.processes else 0
            if h.server in ("gunicorn gthread", "gunicorn gevent") and per_worker < share:
                result.findings.append(
                    Finding(
                        h.host,
                        "gunicorn_worker_connections",
                        per_worker,
                        f"this host's share of the load balancers' proxied connections ({share}),"
                        " which one worker may accept alone (a full worker stops reading its "
                        "idle keep-alive connections and accepts nothing)",
                        f"raise gunicorn_worker_connections to {share}",
                    )
                )
    # Every app worker thread or greenlet may hold its own Redis connection, and every
    # Celery process its broker's and its result store's.
    if redis and (app or workers):
        clients = sum(h.concurrency for h in app) + CELERY_REDIS_CONNECTIONS * sum(
            h.processes for h in workers
        )
        for h in redis:
            if h.concurrency < clients:
                result.findings.append(
                    Finding(
                        h.host,
                        "redis_maxclients",
                        h.concurrency,
                        f"the {clients} clients of the app tier's concurrent requests and "
                        "the workers' processes, each of which may hold a Redis connection",
                        f"raise redis_maxclients to {clients} (and kernel_tuning_nofile to "
                        f"{clients + REDIS_FD_OVERHEAD})",
                    )
                )


def check(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """Every inconsistency of the inventory (empty when it is sound)."""
    return model(hostvars, groups).findings


def queue_growth(served: float, arrival: float) -> str:
    """How a queue served at ``served`` tasks/s behaves under ``arrival`` tasks/s."""
    if arrival > served:
        grows = arrival - served
        return f"grows by {grows:,.1f} tasks/s ({grows * 60:,.0f} a minute)"
    if arrival == served:
        return "holds its length (no headroom: any burst stays queued)"
    return (
        f"drains at {served - arrival:,.1f} tasks/s "
        f"(busy {arrival / served:.0%}; a backlog of 1,000 clears in "
        f"{1000 / (served - arrival):,.0f} s)"
    )


def worker_table(m: Model, arrival_per_s: float | None = None) -> list[str]:
    """The worker tier's queues: processes, served rate, and growth at an arrival rate."""
    rows = []
    for h in m.tier("worker"):
        for q in h.queues:
            served = q["served_per_s"]
            rate = f"{served:,.1f}" if served else "(task_seconds unknown)"
            seconds = f"{q['task_seconds'] * 1000:g} ms" if q["task_seconds"] else ""
            growth = queue_growth(served, arrival_per_s) if served and arrival_per_s else ""
            rows.append(
                f"| {h.host} | {q['name']} | {q['processes']} | {h.cap} | {seconds} | "
                f"{rate} | {growth} |"
            )
    if not rows:
        return []
    arrival = f" at {arrival_per_s:g} tasks/s arriving" if arrival_per_s else ""
    return [
        "",
        "Worker tier (CPU-bound tasks: served = min(processes, CPUs) / task CPU time):",
        "",
        f"| host | queue | processes | cores | task CPU | served tasks/s | queue{arrival} |",
        "|---|---|---:|---|---:|---:|---|",
        *rows,
    ]


def table(m: Model, mean_latency_s: float | None = None, arrival_per_s: float | None = None) -> str:
    """The model as a markdown table, per host and per tier, with the bottleneck."""
    rows = [
        "| tier | host | server | concurrency | counted as | accept queue | fd limit allows"
        " | headroom |",
        "|---|---|---|---:|---|---:|---:|---:|",
    ]
    for tier in ("lb", "app", "redis", "worker", "db"):
        for h in m.tier(tier):
            rows.append(
                f"| {tier} | {h.host} | {h.server} | {h.concurrency:,} | {h.formula} | "
                f"{h.queue:,} | {h.limit:,} ({h.cap}) | {h.headroom:.1f}x |"
            )
        if len(m.tier(tier)) > 1:
            rows.append(
                f"| **{tier}** | all | | **{m.concurrency(tier):,}** | | "
                f"{sum(h.queue for h in m.tier(tier)):,} | | |"
            )
    lines = [*rows, *worker_table(m, arrival_per_s), ""]
    if m.bottleneck:
        lines.append(
            f"Bottleneck: the **{m.bottleneck}** tier, {m.stack_concurrency:,} requests at once."
        )
    if mean_latency_s:
        lines.append(
            f"QPS estimate at a mean latency of {mean_latency_s * 1000:g} ms "
            f"(Little's law, concurrency / latency): {m.qps(mean_latency_s):,.0f}/s."
        )
    lines.append("")
    if m.findings:
        lines.append(f"{len(m.findings)} inconsistencies:")
        lines.extend(f"- {f}" for f in m.findings)
    else:
        lines.append("No inconsistencies between the layers.")
    return "\n".join(lines) + "\n"


def from_inventory(path: str, *overlays: str) -> Model:
    """The model of an inventory directory, with profile overlays read after it."""
    from webtier.model.inventory import load  # noqa: PLC0415 (the model itself needs no files)

    inventory = load(path, *overlays)
    return model(inventory.all_host_vars(), inventory.members)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webtier.model.capacity", description=__doc__.split("\n")[0]
    )
    parser.add_argument("inventory", nargs="?", default="inventory/sandbox")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        help="an overlay read after the inventory (profiles/distro-defaults)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="mean latency for the QPS estimate"
    )
    parser.add_argument(
        "--arrival",
        type=float,
        default=None,
        help="tasks per second arriving at each worker queue: how fast it grows or drains",
    )
    parser.add_argument("--json", action="store_true", help="print the model as JSON")
    args = parser.parse_args(argv)
    from webtier.model.inventory import load  # noqa: PLC0415 (the model itself needs no files)

    inventory = load(args.inventory, *args.profile)
    hostvars = inventory.all_host_vars()
    m = model(hostvars, inventory.members)
    predictions = cpu_predictions(hostvars)
    if args.json:
        print(
            json.dumps(
                {
                    **m.as_dict(),
                    "qps_estimate": m.qps(args.latency_ms / 1000),
                    "cpu_predictions": predictions,
                },
                indent=2,
            )
        )
    else:
        print(f"# Capacity of {' + '.join([args.inventory, *args.profile])}\n")
        print(table(m, args.latency_ms / 1000, args.arrival), end="")
        print(prediction_table(predictions), end="")
    return 1 if m.findings else 0


def cpu_predictions(hostvars: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The CPU model's throughput and latency for each endpoint the inventory calibrated
    (``webtier_cpu_demand``, the same on every host: group_vars/all)."""
    demand = cpu.demand_of(hostvars)
    return {path: cpu.for_endpoint(d, hostvars, cpu.LEVELS) for path, d in demand.items()}


def prediction_table(predictions: Mapping[str, Any]) -> str:
    if not predictions:
        return (
            "\nNo CPU calibration (webtier_cpu_demand): `make loadtest` measures one and writes "
            "it to reports/loadtest/<profile>/cpu-demand.yml.\n"
        )
    lines = [""]
    for path, p in predictions.items():
        pools = "; ".join(
            f"{x['name']} ({x['cores']} cores): {x['demand_us']:,.0f} us/request"
            for x in p["pools"]
        )
        levels = p["levels"].values()
        lines += [
            f"Predicted for `{path}` (CPU per request by pool: {pools}; ceiling "
            f"{p['ceiling_rps']:,.0f} req/s, pool {p['bottleneck_pool']}):",
            "",
            "| connections | " + " | ".join(f"{n:,}" for n in p["levels"]) + " |",
            "|---|" + "---:|" * len(p["levels"]),
            "| req/s | " + " | ".join(f"{v['rps']:,.0f}" for v in levels) + " |",
            "| mean ms | " + " | ".join(f"{v['mean_ms']:,.1f}" for v in levels) + " |",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
