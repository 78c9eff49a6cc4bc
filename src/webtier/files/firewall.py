"""The tier firewall, planned from the inventory for both engines.

Each host accepts what its tiers serve, from the tier that calls it, and nothing else
but SSH:

- a load balancer: its sites' ports (nginx_sites), from anywhere;
- an app server: its app server's port (and a Gunicorn host's stand-in port, which a
  release in place serves from), from the load balancers;
- a Redis host: redis_port from the app servers, the queue's workers and the other
  Redis hosts (replicas), and Sentinel's port from the same hosts when Sentinel runs;
- a database host: PgBouncer's port from the groups its ``postgresql_client_groups``
  names (the app servers and the workers by default); PostgreSQL itself listens on
  loopback only;
- pgBackRest's TLS server: on a database host from its repository host, on a repository
  host from the database hosts it backs up;
- a worker host: nothing but SSH (its workers only connect out, to the broker).

Sources are named by their inventory names, as the load balancers' upstreams name the
app servers (not ``ansible_host``: that is how the controller reaches a host, which may
be another network, or a value a run overrides for every host with ``-e``). Each engine
resolves them on the host at converge time (``getent ahostsv4``, the host's own view of
the network; ``addresses``) and the table holds the addresses, so that it loads at boot
before the network and without name resolution. The render command, which reaches no
host, keeps the names. Every table of
``plan()`` also has an empty set, ``extra_sources``, that a test may fill at run time
(the load test's own load generator, hitting an app server directly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webtier.files import nginx, pgbackrest
from webtier.model.inventory import role_defaults

Groups = Mapping[str, Sequence[str]]
HostVars = Mapping[str, Mapping[str, Any]]


def _site_ports(sites: Sequence[Mapping[str, Any]]) -> list[int]:
    ports = set()
    for site in sites:
        if site.get("port", 80) is not None:
            ports.add(int(site.get("port", 80)))
        if "tls" in site:
            ports.add(int(site["tls"].get("port", 443)))
    return sorted(ports)


def addresses(name: str, getent_output: str) -> list[str]:
    """The IPv4 addresses of ``getent ahostsv4 NAME``'s output, in its order."""
    found = dict.fromkeys(line.split()[0] for line in getent_output.splitlines() if line.strip())
    return list(found)


#: The inventory group of the load balancers: the tier the app servers admit, and
#: whose forwarded headers they trust.
LOAD_BALANCERS = "loadbalancers"


def trusted_proxies(
    setting: str | Sequence[str],
    groups: Groups,
    resolved: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The addresses an app server takes X-Forwarded-For/Proto from: ``setting`` as
    given, or for ``auto`` 127.0.0.1 and the load balancers (with ``resolved``, name ->
    addresses read on the host, their addresses; without, as a render, their names)."""
    if setting != "auto":
        return list(setting)
    names = list(groups.get(LOAD_BALANCERS, ()))
    if resolved is None:
        return ["127.0.0.1", *names]
    missing = [n for n in names if not resolved.get(n)]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} cannot be resolved here: the app server would not "
            "trust its load balancer. Fix the host's name resolution (or /etc/hosts)"
        )
    return ["127.0.0.1", *sorted({a for n in names for a in resolved[n]})]


def sources(host: str, groups: Groups, hostvars: HostVars) -> list[str]:
    """The names ``host``'s rules admit: what the engines resolve on the host."""
    return sorted({name for rule in plan(host, groups, hostvars) for name in rule["sources"]})


def plan(
    host: str,
    groups: Groups,
    hostvars: HostVars,
    resolved: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """The accept rules of ``host``: ``{ports, sources, why}`` each, ``sources`` empty
    for "from anywhere" (the load balancers' sites, marked ``anywhere``; a tier whose
    callers the inventory does not have gets no rule). Reads the inventory's variables,
    else the roles' defaults. With ``resolved`` (name -> addresses, read on the host),
    sources are addresses."""
    rules: list[dict[str, Any]] = []

    def var(name: str, role: str) -> Any:
        own = hostvars[host]
        return own[name] if name in own else role_defaults(role)[name]

    def hosts_of(*names: str) -> list[str]:
        found: dict[str, None] = {}
        for name in names:
            found.update(dict.fromkeys(h for h in groups.get(name, ()) if h != host))
        return list(found)

    if host in groups.get(LOAD_BALANCERS, ()):
        rules.append(
            {
                "ports": _site_ports(var("nginx_sites", "nginx")),
                "sources": [],
                "anywhere": True,
                "why": "sites, from anywhere",
            }
        )
    if host in groups.get("appservers", ()):
        app = nginx.app_server(host, hostvars[host])
        ports = [int(a.rsplit(":", 1)[1]) for a in (app["address"], app["standin_address"]) if a]
        rules.append(
            {
                "ports": ports,
                "sources": hosts_of(LOAD_BALANCERS),
                "why": "app server (and its stand-in during a release), from the load balancers",
            }
        )
    if host in groups.get("redis", ()):
        ports = [int(var("redis_port", "redis"))]
        if var("redis_sentinel", "redis"):
            ports.append(int(var("redis_sentinel_port", "redis")))
        rules.append(
            {
                "ports": ports,
                "sources": hosts_of("appservers", "workers", "redis"),
                "why": "Redis (and Sentinel), from the app servers, the workers and the "
                "other Redis hosts",
            }
        )
    if host in groups.get("databases", ()):
        clients = var("postgresql_client_groups", "postgresql")
        rules.append(
            {
                "ports": [int(var("postgresql_pgbouncer_port", "postgresql"))],
                "sources": hosts_of(*clients),
                "why": f"PgBouncer, from {', '.join(clients)}",
            }
        )
    if host in groups.get("databases", ()) and var("postgresql_replication_group", "postgresql"):
        # a replicated set (pg_auto_failover): the peers stream from and rewind against
        # this server, the monitor checks its health; PgBouncer stays the apps' door.
        # The hosts are the ones its pg_hba.conf names (postgresql.failover_names).
        from webtier.files.postgresql import failover_names  # noqa: PLC0415 (postgresql reads facts, which reads this module)

        group = var("postgresql_replication_group", "postgresql")
        failover = {
            "postgresql_replication_group": group,
            "postgresql_monitor_group": var("postgresql_monitor_group", "postgresql"),
        }
        rules.append(
            {
                "ports": [5432],
                "sources": failover_names(host, failover, groups),
                "why": f"PostgreSQL, from the other hosts of {group} (replication) and the "
                "monitor (health checks)",
            }
        )
    if host in groups.get("database_monitors", ()):
        rules.append(
            {
                "ports": [int(var("postgresql_monitor_port", "postgresql_monitor"))],
                "sources": hosts_of(
                    var("postgresql_monitor_databases_group", "postgresql_monitor")
                ),
                "why": "pg_auto_failover's monitor, from the database hosts' keepers",
            }
        )
    if host in groups.get(pgbackrest.DATABASES, ()) or host in groups.get(
        pgbackrest.REPOSITORIES, ()
    ):
        # pgBackRest's TLS servers: the repository backs a database host up through its
        # server; the database hosts archive WAL and restore through the repository's.
        backed = pgbackrest.peers(host, groups, hostvars)
        rules.append(
            {
                "ports": [int(var("pgbackrest_port", "pgbackrest"))],
                "sources": backed,
                "why": "pgBackRest, from "
                + (
                    "its database hosts"
                    if host in groups.get(pgbackrest.REPOSITORIES, ())
                    else "its repository"
                ),
            }
        )
    # A tier with no caller in the inventory admits nobody (an empty source list would
    # read as "from anywhere" in the table).
    rules = [r for r in rules if r["ports"] and (r["sources"] or r.get("anywhere"))]
    if resolved is None:
        return rules
    missing = sorted({n for r in rules for n in r["sources"] if not resolved.get(n)})
    if missing:
        raise ValueError(
            f"{', '.join(missing)} cannot be resolved on {host}: the table would drop "
            "their tier. Fix the host's name resolution (or /etc/hosts) and run again"
        )
    for rule in rules:
        rule["sources"] = sorted({a for name in rule["sources"] for a in resolved[name]})
    return rules
