"""Every sizing rule, once: what the roles derive from a host's variables and its CPUs.

The templates receive these results and never recompute them; the capacity model counts
with the same functions; both engines call them (Ansible through the roles' thin filter
plugins, pyinfra and the render command through ``webtier.files.configs``).

- ``gunicorn_sizes``: Gunicorn's ``auto`` workers (sync: 2 x CPUs + 1, gthread:
  2 x CPUs, gevent and asgi: one per CPU), threads (4) and worker_connections (1000);
- ``uwsgi_processes``: uWSGI's ``auto`` processes (2 x CPUs);
- ``nginx_rlimit_nofile``: nginx's ``auto`` descriptor limit (2 x worker_connections);
- ``redis_nofile``: the descriptor limit Redis's unit gets (maxclients + 32);
- ``celery_queues``: each Celery queue's ``auto`` concurrency (one process per CPU) and
  its unit's stop timeout (the hard time limit and a margin: a warm shutdown lets the
  running tasks finish);
- ``granted_memory_mb``: the memory a host really grants: its RAM, or its cgroup's
  limit when that is lower (a container with a memory limit reads the whole machine's
  RAM in /proc/meminfo);
- ``postgresql_memory``: PostgreSQL's ``auto`` memory settings from the host's RAM
  (shared_buffers a quarter, effective_cache_size three quarters, maintenance_work_mem
  a sixteenth up to 1 GiB: the PostgreSQL documentation's starting points);
- ``pgbouncer_server_connections`` and ``pgbouncer_nofile``: the server connections
  PgBouncer may open (each database's pool and reserve) and the descriptors it needs;
- ``FD_OVERHEAD`` and ``REDIS_FD_OVERHEAD``: the descriptors a server needs besides its
  connections.
"""

from __future__ import annotations

from typing import Any

#: Descriptors a server process needs besides its connections (logs, libraries, pipes).
FD_OVERHEAD = 64
#: Redis keeps 32 descriptors for itself beyond maxclients (redis.conf, "maxclients").
REDIS_FD_OVERHEAD = 32
#: What Gunicorn uses when threads or worker_connections are ``auto``.
AUTO_THREADS = 4
AUTO_WORKER_CONNECTIONS = 1000


def _count(value: Any, auto: int) -> int:
    return auto if value == "auto" else int(value)


def gunicorn_sizes(
    worker_class: str, workers: Any, threads: Any, worker_connections: Any, cpus: int
) -> dict[str, int]:
    """Gunicorn's workers, threads and worker_connections, ``auto`` resolved for ``cpus``."""
    cpus = int(cpus)
    auto_workers = {"sync": 2 * cpus + 1, "gthread": 2 * cpus}.get(worker_class, cpus)
    return {
        "workers": _count(workers, auto_workers),
        "threads": _count(threads, AUTO_THREADS),
        "worker_connections": _count(worker_connections, AUTO_WORKER_CONNECTIONS),
    }


def uwsgi_processes(processes: Any, cpus: int) -> int:
    """uWSGI's processes, ``auto`` resolved for ``cpus``."""
    return _count(processes, 2 * int(cpus))


def nginx_rlimit_nofile(value: Any, worker_connections: Any) -> int:
    """nginx's ``worker_rlimit_nofile``: ``auto`` is twice the connections (a proxied
    client holds two, and files need room too)."""
    return _count(value, 2 * int(worker_connections))


def redis_nofile(maxclients: Any) -> int:
    """The descriptor limit Redis needs: its clients and what it keeps for itself."""
    return int(maxclients) + REDIS_FD_OVERHEAD


#: Seconds a Celery worker's warm shutdown gets beyond the hard time limit (its tasks
#: end by then; the rest is the pool's own shutdown).
CELERY_STOP_MARGIN = 30
#: Seconds an app server's stop gets beyond its graceful timeout (Gunicorn) or harakiri
#: (uWSGI), before systemd kills what is left.
APP_SERVER_STOP_MARGIN = 5


def celery_queues(queues: Any, cpus: int) -> list[dict[str, Any]]:
    """celery_worker_queues with each ``concurrency`` resolved: ``auto`` is one worker
    process per CPU (CPU-bound tasks gain nothing from more)."""
    return [
        {**queue, "concurrency": _count(queue.get("concurrency", "auto"), int(cpus))}
        for queue in queues
    ]


def stop_timeout(seconds: Any, margin: int) -> int:
    """A unit's TimeoutStopSec: what its work may still take when told to stop (a
    request's graceful timeout, a task's hard limit), and ``margin`` for the rest."""
    return int(seconds) + margin


def redis_maxmemory(setting: Any, memtotal_mb: int) -> str:
    """redis.conf's maxmemory: ``setting`` as Redis reads it (``2gb``, ``0``), or for a
    share (``25%``) that share of the memory the host grants, in bytes."""
    text = str(setting).lower()
    if text.endswith("%"):
        return str(int(memtotal_mb * 1048576 * float(text[:-1]) / 100))
    return text


#: The kernel's answer for "no memory limit" in a cgroup v1 limit file (a page-aligned
#: LONG_MAX); cgroup v2 writes "max".
_NO_CGROUP_LIMIT = 1 << 62


def granted_memory_mb(memtotal_kb: Any, cgroup_limit: Any = "max") -> int:
    """The host's memory in MiB: ``MemTotal`` of /proc/meminfo (kB), capped by the memory
    limit of the cgroup its services run in (bytes; ``max``, empty or a v1 "unlimited"
    value: no cap)."""
    total = int(memtotal_kb) * 1024
    limit = str(cgroup_limit).strip()
    if limit.isdigit() and int(limit) < min(total, _NO_CGROUP_LIMIT):
        total = int(limit)
    return total // (1024 * 1024)


def postgresql_memory(
    shared_buffers: Any,
    effective_cache_size: Any,
    maintenance_work_mem: Any,
    memtotal_mb: int,
    declared_mb: Any = None,
) -> dict[str, str]:
    """PostgreSQL's memory settings, each ``auto`` resolved for the host's RAM: the
    inventory's ``webtier_memory_mb`` (``declared_mb``) when it gives one (a container
    reads the whole machine's), else what the host has (``memtotal_mb``)."""
    mb = int(declared_mb) if declared_mb else int(memtotal_mb)
    auto = {
        "shared_buffers": f"{max(mb // 4, 16)}MB",
        "effective_cache_size": f"{max(mb * 3 // 4, 16)}MB",
        "maintenance_work_mem": f"{min(max(mb // 16, 16), 1024)}MB",
    }
    given = {
        "shared_buffers": shared_buffers,
        "effective_cache_size": effective_cache_size,
        "maintenance_work_mem": maintenance_work_mem,
    }
    return {k: auto[k] if value == "auto" else str(value) for k, value in given.items()}


def pgbouncer_server_connections(databases: int, pool_size: Any, reserve_pool_size: Any) -> int:
    """The server connections PgBouncer may open at most: one pool per database (each
    database has one user), each its pool and its reserve."""
    return int(databases) * (int(pool_size) + int(reserve_pool_size))


def pgbouncer_nofile(max_client_conn: Any, server_connections: int) -> int:
    """The descriptor limit PgBouncer's unit needs: every client, every server
    connection and its own."""
    return int(max_client_conn) + int(server_connections) + FD_OVERHEAD


def app_source(src: str, cwd: str) -> str:
    """The directory python_app_src names, on the controller: an absolute path as it is;
    a relative one from the directory the command runs in (``cwd``), else from the
    collection (the demo apps its defaults name ship there)."""
    from pathlib import Path  # noqa: PLC0415 (this module is otherwise pure arithmetic)

    from webtier import ROOT  # noqa: PLC0415

    path = Path(src)
    if path.is_absolute():
        return str(path)
    here = Path(cwd) / path
    return str(here if here.is_dir() else ROOT / path)


def failover_timeouts(period_s: Any, unhealthy_s: Any, demote_s: Any) -> dict[str, int]:
    """pg_auto_failover's timing, from the monitor's three settings (seconds): its health
    checks (pgautofailover.*, in ms) and each keeper's network_partition_timeout. Fencing
    by construction: a primary that reaches neither the monitor nor a standby demotes
    itself after network_partition_timeout, and the monitor promotes a standby only after
    the primary was unhealthy and then primary_demote_timeout passed; the keeper's time
    is 2 s shorter, so the old primary stops taking writes before a new one starts.
    A failover then takes about unhealthy + demote + the promotion (measured: 3 + 6 s
    gave writes back 10.0 s after the primary's container was killed)."""
    period, unhealthy, demote = int(period_s), int(unhealthy_s), int(demote_s)
    return {
        "health_check_period": period * 1000,
        "health_check_timeout": period * 1000,
        "health_check_max_retries": 1,
        "health_check_retry_delay": period * 500,
        "node_considered_unhealthy_timeout": unhealthy * 1000,
        "primary_demote_timeout": demote * 1000,
        "network_partition_timeout": max(demote - 2, 1),
    }
