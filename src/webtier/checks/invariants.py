"""Rules between hosts and tiers that are not about capacity (that is webtier.model.capacity):

- **the app's interface**: the app server speaks it (uWSGI: WSGI only; Gunicorn's
  ``asgi`` worker for ASGI apps, the others for WSGI apps);
- **ports**: two listeners of one host on one port (the second server would not start);
- **keep-alive**: a load balancer keeps idle upstream connections open longer than the
  Gunicorn servers behind it do (nginx would reuse a connection the server is closing,
  and the request fails with a 502);
- **the app's Redis**: the ``REDIS_URL`` an app is given names a host of the Redis tier,
  on the port that host's Redis listens on, with a password its URL can carry;
- **a replicated Redis set**: its group holds the host and exactly one primary, and
  Sentinel's quorum can be reached by the set's Sentinels;
- **the app's Redis user**: an app has a user of its own among its Redis hosts'
  ``redis_app_users`` (``python_app_redis_user``, else the app's name);
- **the app's database**: ``python_app_database_group`` names a group of database
  hosts, and ``python_app_database`` one of their databases;
- **a database tier's hosts**: each serves its group's first host's databases, TLS
  switch and PgBouncer port (the app's URL names them all);
- **a queue's broker**: the Redis a worker tier uses as Celery's broker keeps every
  queued task (no evicting maxmemory policy, persistence on), and worker hosts are not
  app servers too.

Each rule reads the variables the roles run with (role defaults under the inventory)
and returns :class:`webtier.model.schema.Finding` s. ``check()`` runs them all; preflight runs
it for both engines after the per-role model passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from webtier.files import pgbackrest
from webtier.files.app import chosen_database, chosen_redis_user
from webtier.files.nginx import UPSTREAM_DEFAULTS, standin_port
from webtier.model.inventory import SEALED, role_defaults, with_defaults
from webtier.model.schema import Finding
from webtier.model.topology import roles_of

#: A duration in nginx's units, in seconds (the model has checked its form).
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}
#: What a URL's password must encode (it would end the user part or the URL): these
#: characters, and a % that does not start an escape.
_URL_SPECIAL = re.compile(r"[/#@?\s:]|%(?![0-9A-Fa-f]{2})")


def seconds(value: Any) -> float:
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h|d)?", str(value)).groups()
    return int(number) * _UNITS[unit or ""]


def _port(bind: str) -> int | None:
    if bind.startswith(("unix:", "/")) or ":" not in bind:
        return None
    return int(bind.rsplit(":", 1)[1])


def listeners(host: str, v: Mapping[str, Any], roles: Sequence[str]) -> list[tuple[int, str]]:
    """(port, variable) of every TCP listener the host's roles start."""
    found = [(int(v["firewall_ssh_port"]), "firewall_ssh_port")]
    if "gunicorn" in roles:
        tcp = [
            (p, f"gunicorn_bind[{i}]") for i, b in enumerate(v["gunicorn_bind"]) if (p := _port(b))
        ]
        found += tcp
        if tcp:  # a release in place starts a stand-in there (playbooks/deploy.yml)
            found.append((standin_port(v, tcp[0][0]), "webtier_app_standin_port"))
    if "uwsgi" in roles:
        for name in ("uwsgi_bind", "uwsgi_stats"):
            if port := _port(str(v[name])):
                found.append((port, name))
    if "redis" in roles:
        found.append((int(v["redis_port"]), "redis_port"))
        if v["redis_sentinel"]:
            found.append((int(v["redis_sentinel_port"]), "redis_sentinel_port"))
    if "nginx" in roles:
        found.append((int(v["nginx_status_port"]), "nginx_status_port"))
        ports: dict[int, str] = {}
        for i, site in enumerate(v["nginx_sites"]):
            if site.get("port", 80) is not None:
                ports.setdefault(int(site.get("port", 80)), f"nginx_sites[{i}].port")
            if "tls" in site:
                ports.setdefault(int(site["tls"].get("port", 443)), f"nginx_sites[{i}].tls.port")
        found += [(p, name) for p, name in ports.items()]  # sites share their ports
    return found


def ports(host: str, v: Mapping[str, Any], roles: Sequence[str]) -> list[Finding]:
    seen: dict[int, str] = {}
    findings = []
    for port, name in listeners(host, v, roles):
        if port in seen:
            findings.append(
                Finding(
                    host,
                    name,
                    port,
                    f"{seen[port]} listens on port {port} on this host already",
                    f"give {name} another port",
                )
            )
        seen.setdefault(port, name)
    return findings


def keepalive(
    host: str, v: Mapping[str, Any], hostvars, groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """nginx's idle upstream connections must close before Gunicorn's side does."""
    findings = []
    for i, upstream in enumerate(v["nginx_upstreams"]):
        pooled = int(upstream.get("keepalive", UPSTREAM_DEFAULTS["keepalive"])) > 0
        if upstream.get("protocol", "http") != "http" or "group" not in upstream or not pooled:
            continue
        given = upstream.get("keepalive_timeout", UPSTREAM_DEFAULTS["keepalive_timeout"])
        timeout = seconds(given)
        for app in groups.get(upstream["group"], []):
            app_vars = with_defaults(roles_of(app, groups), hostvars[app])
            if app_vars.get("webtier_app_server") != "gunicorn":
                continue
            if timeout >= int(app_vars["gunicorn_keepalive"]):
                findings.append(
                    Finding(
                        host,
                        f"nginx_upstreams[{i}].keepalive_timeout",
                        given,
                        f"{app}'s gunicorn_keepalive={app_vars['gunicorn_keepalive']} (nginx "
                        "would reuse connections Gunicorn is closing: 502s)",
                        f"keep it below {app_vars['gunicorn_keepalive']}s, or raise "
                        "gunicorn_keepalive",
                    )
                )
                break
    return findings


def redis_endpoint(
    host: str, v: Mapping[str, Any], hostvars, groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """The app's REDIS_URL points at the Redis tier, on its port, with an encoded password."""
    for kind in ("python_app_secret_env", "python_app_env"):
        url = str((v.get(kind) or {}).get("REDIS_URL", ""))
        if url:
            break
    else:
        return []
    where = f"{kind}.REDIS_URL"
    match = re.fullmatch(
        r"(?P<scheme>rediss?://)(?:(?P<user>[^:@]*)(?::(?P<pw>.*))?@)?(?P<hp>[^@/]+)(?P<db>/.*)?",
        url,
    )
    if not match:
        return [
            Finding(
                host,
                where,
                "<hidden>",
                "a redis:// URL",
                "write redis://user:<password>@host:6379/0",
            )
        ]
    # The finding shows the URL without its password (preflight's output reaches logs).
    user = f"{match['user']}:***@" if match["pw"] is not None else ""
    shown = f"{match['scheme']}{user}{match['hp']}{match['db'] or ''}"
    password = match["pw"] or ""
    if not password.startswith("<vault:") and _URL_SPECIAL.search(password):
        return [
            Finding(
                host,
                where,
                shown,
                "a password the URL can carry ('/', '#', '@', '?', '%', ':' and spaces end "
                "its part of the URL)",
                "give it in REDIS_PASSWORD (python_app_secret_env) and leave it out of the "
                "URL, or URL-encode it (%2F for /, %23 for #, %40 for @, %20 for a space)",
            )
        ]
    name, _, port = match["hp"].rpartition(":")
    if not name:
        name, port = match["hp"], "6379"
    tier = groups.get("redis", [])
    by_address = {str(hostvars[r].get("ansible_host", r)): r for r in tier} | {r: r for r in tier}
    if name not in by_address:
        return [
            Finding(
                host,
                where,
                shown,
                f"a host of the Redis tier ({', '.join(tier) or 'the inventory has none'})",
                "name a host of the redis group, e.g. {{ groups['redis'] | first }}",
            )
        ]
    redis = by_address[name]
    redis_port = int(with_defaults(roles_of(redis, groups), hostvars[redis])["redis_port"])
    if not port.isdigit() or int(port) != redis_port:
        return [
            Finding(
                host,
                where,
                shown,
                f"{redis}'s redis_port={redis_port}",
                f"write {name}:{redis_port} in the URL",
            )
        ]
    return []


def _tier_group(  # noqa: PLR0913, PLR0917 (the variable, its value and how to name the tier)
    host: str,
    variable: str,
    group: str,
    role: str,
    groups: Mapping[str, Sequence[str]],
    what: str,
    example: str,
) -> list[Finding]:
    """``variable`` (a group's name, or empty) names a group whose hosts all run
    ``role``: the tier the app's environment is derived from."""
    members = list(groups.get(group, [])) if group else []
    if not group or (members and all(role in roles_of(m, groups) for m in members)):
        return []
    tiers = [
        g
        for g, m in groups.items()
        if m and g != "all" and all(role in roles_of(h, groups) for h in m)
    ]
    return [
        Finding(
            host,
            variable,
            group,
            f"a group of {what} hosts ("
            + ("the inventory has no such group" if not members else "it holds other hosts")
            + ")",
            f"name one of {sorted(tiers) or [example]}, or '' for no {what}",
        )
    ]


def redis_group(
    host: str, v: Mapping[str, Any], hostvars, groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """python_app_redis_group names a group of Redis hosts (the app's environment is
    derived from theirs), and the app has a user of its own among their
    redis_app_users (by the same rule: chosen_redis_user)."""
    group = v.get("python_app_redis_group", "")
    found = _tier_group(
        host, "python_app_redis_group", group, "redis", groups, "Redis", "a redis group"
    )
    if found or not group:
        return found
    first = groups[group][0]
    redis = with_defaults(["redis"], hostvars[first])
    name = v.get("python_app_redis_user") or v.get("python_app_name", "")
    if not redis["redis_auth"] or chosen_redis_user(redis["redis_app_users"], name):
        return []
    names = ", ".join(str(u.get("name")) for u in redis["redis_app_users"]) or "none"
    return [
        Finding(
            host,
            "python_app_redis_user" if v.get("python_app_redis_user") else "python_app_name",
            name,
            f"a user of its own among {first}'s redis_app_users ({names}): each app logs "
            "in to Redis as its own user, which reaches that app's keys only",
            f"add {{name: {name}, password: ...}} to redis_app_users (the password in the "
            "vault), or name one of them in python_app_redis_user",
        )
    ]


def database_group(
    host: str, v: Mapping[str, Any], hostvars, groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """python_app_database_group names a group of database hosts, and
    python_app_database one of their databases (the app's DATABASE_URL takes the
    database from the group's first host, by the same rule: chosen_database; the other
    hosts serve the same, database_peers)."""
    group = v.get("python_app_database_group", "")
    found = _tier_group(
        host,
        "python_app_database_group",
        group,
        "postgresql",
        groups,
        "database",
        "a databases group",
    )
    if found or not group:
        return found
    first = groups[group][0]
    databases = with_defaults(["postgresql"], hostvars[first])["postgresql_databases"]
    name = v.get("python_app_database", "")
    if chosen_database(databases, name) is not None:
        return []
    names = ", ".join(d.get("name") for d in databases) or "none"
    return [
        Finding(
            host,
            "python_app_database",
            name or "''",
            f"a database of {first}'s postgresql_databases ({names})",
            "add it to postgresql_databases, or name one of them",
        )
    ]


#: What every host of a database tier holds as its first host does: the app's URL names
#: them all and takes the rest from the first (a replica serves the primary's databases).
DATABASE_PEERS = ("postgresql_databases", "postgresql_pgbouncer_tls", "postgresql_pgbouncer_port")


def database_peers(
    host: str, v: Mapping[str, Any], hostvars, groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """In each group of database hosts (every member runs postgresql) this host shares
    with others: its databases (names, users, passwords), TLS switch and PgBouncer port
    are its first host's."""
    found = []
    for name, members in groups.items():
        if name == "all" or host not in members or members[0] == host:
            continue
        if not all("postgresql" in roles_of(m, groups) for m in members):
            continue
        first = with_defaults(["postgresql"], hostvars[members[0]])
        for variable in DATABASE_PEERS:
            if v[variable] == first[variable]:
                continue
            mine, theirs, also = v[variable], first[variable], ""
            if variable == "postgresql_databases":  # names and users, never a password
                also = ", with the same passwords"
                mine, theirs = (
                    [f"{d.get('name')}/{d.get('user')}" for d in x] for x in (mine, theirs)
                )
            found.append(
                Finding(
                    host,
                    variable,
                    mine,
                    f"{members[0]}'s ({theirs}{also}): every host of the "
                    f"{name} tier serves the same databases, as the apps' DATABASE_URL names "
                    "them all",
                    f"set {variable} once for the group (group_vars/{name})",
                )
            )
    return found


def interface(host: str, roles: Sequence[str], values: Mapping[str, Any]) -> list[Finding]:
    """The app server has an entry point, and speaks the app's interface (WSGI or ASGI)."""
    server = next((r for r in ("gunicorn", "uwsgi") if r in roles), None)
    if server and not values.get("python_app_entrypoint"):
        return [
            Finding(
                host,
                "python_app_entrypoint",
                "(empty)",
                f"the callable {server} serves",
                "give module:callable or module:factory(), e.g. webtier_demo_flask:create_app()",
            )
        ]
    interface = values.get("python_app_interface", "wsgi")
    if "uwsgi" in roles and interface == "asgi":
        return [
            Finding(
                host,
                "python_app_interface",
                interface,
                "uWSGI serves WSGI apps only",
                "serve this app from app_gunicorn with gunicorn_worker_class: asgi",
            )
        ]
    kind = values.get("gunicorn_worker_class")
    if "gunicorn" in roles and (kind == "asgi") != (interface == "asgi"):
        return [
            Finding(
                host,
                "gunicorn_worker_class",
                kind,
                f"the app's interface python_app_interface={interface}",
                "use asgi for ASGI apps (FastAPI, Starlette) and sync, gthread or "
                "gevent for WSGI apps",
            )
        ]
    return []


def replication(
    host: str, v: Mapping[str, Any], hostvars: Mapping[str, Mapping[str, Any]], groups
) -> list[Finding]:
    """A replicated Redis set (``redis_replication_group``) holds this host and exactly
    one primary; with Sentinel, its quorum is at most the set's Sentinels."""
    group = v["redis_replication_group"]
    if not group:
        return []
    members = [m for m in groups.get(group, ()) if m in hostvars]
    # a member is a Redis host, whichever groups the inventory also puts it in
    redis = {m: with_defaults(["redis"], hostvars[m]) for m in members}
    primaries = [m for m in members if redis[m]["redis_replication_role"] == "primary"]
    if host not in members or len(primaries) != 1:
        return [
            Finding(
                host,
                "redis_replication_group",
                group,
                f"an inventory group holding {host} and exactly one host with "
                "redis_replication_role: primary (its primaries: "
                f"{', '.join(primaries) or 'none'})",
                "add the host to the group and give one host of it redis_replication_role: primary",
            )
        ]
    sentinels = sum(1 for m in members if redis[m]["redis_sentinel"])
    quorum = int(v["redis_sentinel_quorum"])
    if v["redis_sentinel"] and quorum > sentinels:
        return [
            Finding(
                host,
                "redis_sentinel_quorum",
                quorum,
                f"the {sentinels} Sentinel host(s) of {group} (a quorum above them never agrees)",
                f"lower redis_sentinel_quorum to {sentinels} or run Sentinel on more hosts",
            )
        ]
    return []


#: What makes a Redis lose a queued task, by redis.conf directive (a value the role's
#: profile or redis_extra_config gives): evicting keys under memory pressure, or keeping
#: nothing across a restart.
_LOSES_TASKS = {
    "maxmemory-policy": lambda value: value != "noeviction",
    "appendonly": lambda value: value != "yes",
}


def broker(
    host: str, v: Mapping[str, Any], hostvars: Mapping[str, Mapping[str, Any]], groups
) -> list[Finding]:
    """A worker's broker (its app's Redis, python_app_redis_group) is a store: with
    ``redis_profile: cache`` (an evicting maxmemory policy, no persistence) a queued task
    may be evicted under memory pressure or lost at a restart. A worker host is not also
    an app server (the role's point is to move CPU-bound work off the web tier's CPUs,
    and one release of the app would be installed twice with different servers)."""
    found = []
    if host in groups.get("appservers", ()):
        found.append(
            Finding(
                host,
                "workers",
                "also in appservers",
                "worker hosts of their own (CPU-bound tasks beside the web workers take the "
                "CPU the web tier's concurrency needs)",
                "take the host out of one of the two groups",
            )
        )
    group = v.get("python_app_redis_group", "")
    members = [m for m in groups.get(group, ()) if m in hostvars] if group else []
    if not members:
        return [
            *found,
            Finding(
                host,
                "python_app_redis_group",
                group or "(empty)",
                "the worker's broker: a group of Redis hosts",
                "name the Redis group the web app enqueues to, e.g. python_app_redis_group: redis",
            ),
        ]
    for member in members:
        redis = with_defaults(["redis"], hostvars[member])
        extra = {k: str(x) for k, x in (redis.get("redis_extra_config") or {}).items()}
        losing = [
            f"{k} {extra[k]}" for k, loses in _LOSES_TASKS.items() if k in extra and loses(extra[k])
        ]
        if redis["redis_profile"] != "store":
            losing.insert(
                0,
                f"redis_profile {redis['redis_profile']} (maxmemory-policy "
                f"{redis['redis_maxmemory_policy']}, no persistence)",
            )
        if losing:
            found.append(
                Finding(
                    host,
                    "python_app_redis_group",
                    group,
                    f"a broker that keeps every queued task: {member} runs {', '.join(losing)}, "
                    "so a queued task could be evicted or lost at a restart",
                    f"give the {group} group redis_profile: store (AOF, noeviction), or point "
                    "the workers and the web app that enqueues at a store-profile Redis group",
                )
            )
            break
    return found


#: Settings a hot standby must hold at least at its primary's value, or it stops
#: (PostgreSQL's hot-standby rule), with PostgreSQL's defaults: in a set any host may
#: become the primary, so the set's hosts must agree. max_connections is the role's own
#: variable; the others come from postgresql_extra_config.
STANDBY_AT_LEAST = {
    "max_connections": None,
    "max_worker_processes": 8,
    "max_wal_senders": 10,
    "max_prepared_transactions": 0,
    "max_locks_per_transaction": 64,
}
#: PostgreSQL's default of replication slots (pg_auto_failover keeps one per other host).
DEFAULT_REPLICATION_SLOTS = 10


def _standby_setting(v: Mapping[str, Any], name: str) -> int:
    if name == "max_connections":
        return int(v["postgresql_max_connections"])
    return int(v["postgresql_extra_config"].get(name, STANDBY_AT_LEAST[name]))


def _set_settings(
    host: str, v: Mapping[str, Any], members: Sequence[str], hostvars, group: str
) -> list[Finding]:
    """A set's hosts agree on what a standby needs at least at its primary's value, and
    each has the WAL senders (every other host's standby, and one more for a base backup
    or pg_rewind) and slots (one per other host) the set needs."""
    extra = v["postgresql_extra_config"]
    senders = int(extra.get("max_wal_senders", STANDBY_AT_LEAST["max_wal_senders"]))
    slots = int(extra.get("max_replication_slots", DEFAULT_REPLICATION_SLOTS))
    if senders < len(members):
        return [
            Finding(
                host,
                "postgresql_extra_config.max_wal_senders",
                senders,
                f"at least {len(members)} for a set of {len(members)} hosts (a standby's "
                "stream from each other host, and one more for a base backup or pg_rewind)",
                f"raise it to {len(members)} or leave it to PostgreSQL's 10",
            )
        ]
    if slots < len(members) - 1:
        return [
            Finding(
                host,
                "postgresql_extra_config.max_replication_slots",
                slots,
                f"at least {len(members) - 1}: pg_auto_failover keeps a slot for each other "
                f"host of {group}",
                f"raise it to {len(members) - 1} or leave it to PostgreSQL's 10",
            )
        ]
    mine = {name: _standby_setting(v, name) for name in STANDBY_AT_LEAST}
    for other in members:
        if other == host or other not in hostvars:
            continue
        theirs = with_defaults(["postgresql"], hostvars[other])
        for name, value in mine.items():
            if value < (higher := _standby_setting(theirs, name)):
                variable = (
                    "postgresql_max_connections"
                    if name == "max_connections"
                    else f"postgresql_extra_config.{name}"
                )
                return [
                    Finding(
                        host,
                        variable,
                        value,
                        f"{higher}, as on {other}: any host of {group} may become its "
                        f"primary, and a standby whose {name} is below its primary's stops "
                        "(PostgreSQL's hot-standby rule)",
                        f"give every host of {group} the same {variable}",
                    )
                ]
    return []


def database_set(
    host: str, v: Mapping[str, Any], hostvars: Mapping[str, Mapping[str, Any]], groups
) -> list[Finding]:
    """A replicated database set (``postgresql_replication_group``): two or more database
    hosts, each naming this group, watched by exactly one monitor host that is not one
    of them and whose keepers' group holds them all, and agreeing on what a standby
    needs (:func:`_set_settings`)."""
    group = v["postgresql_replication_group"]
    if not group:
        return []
    members = list(groups.get(group, ()))
    strays = [m for m in members if m not in groups.get("databases", ())]
    others = [
        m
        for m in members
        if m in hostvars
        and with_defaults(["postgresql"], hostvars[m])["postgresql_replication_group"] != group
    ]
    if host not in members or len(members) < 2 or strays or others:
        return [
            Finding(
                host,
                "postgresql_replication_group",
                group,
                f"an inventory group of two or more database hosts, {host} among them, each "
                f"with postgresql_replication_group: {group} (its hosts: "
                f"{', '.join(members) or 'none'}"
                + (f"; not database hosts: {', '.join(strays)}" if strays else "")
                + (f"; naming another set: {', '.join(others)}" if others else "")
                + ")",
                "put the set's hosts in the group and in databases, and give them all this "
                "postgresql_replication_group",
            )
        ]
    monitor_group = v["postgresql_monitor_group"]
    monitors = list(groups.get(monitor_group, ()))
    problem = ""
    if len(monitors) != 1:
        problem = f"it has {len(monitors)} hosts (pg_auto_failover has one monitor)"
    elif monitors[0] in members or monitors[0] in groups.get("databases", ()):
        problem = f"{monitors[0]} is a database host (the monitor must outlive them)"
    else:
        watched = with_defaults(["postgresql_monitor"], hostvars.get(monitors[0], {}))
        if host not in groups.get(watched["postgresql_monitor_databases_group"], ()):
            problem = (
                f"its postgresql_monitor_databases_group "
                f"({watched['postgresql_monitor_databases_group']}) does not hold {host}"
            )
    if problem:
        return [
            Finding(
                host,
                "postgresql_monitor_group",
                monitor_group,
                f"a group of exactly one monitor host, not a database host, that admits "
                f"this set's keepers: {problem}",
                "give the set one monitor host of its own in this group",
            )
        ]
    return _set_settings(host, v, members, hostvars, group)


def _sealed(value: Any) -> bool:
    """A vault value nobody opened (its placeholder): judged where the vault is open."""
    return SEALED.split("{", maxsplit=1)[0] in str(value)


def _pem_material(host: str, v: Mapping[str, Any], why: str) -> list[Finding]:
    """pgBackRest's TLS material on a host that runs its server: a CA, a certificate, a key."""
    found = []
    for name in ("pgbackrest_tls_ca_cert", "pgbackrest_tls_cert"):
        if _sealed(v[name]):
            continue
        if "-----BEGIN CERTIFICATE-----" not in str(v[name]):
            found.append(
                Finding(
                    host,
                    name,
                    "(empty)" if not v[name] else "(not a PEM certificate)",
                    f"a PEM certificate: {why}",
                    "paste the PEM text (-----BEGIN CERTIFICATE----- ...), from the vault",
                )
            )
    key = v["pgbackrest_tls_key"]
    if not _sealed(key) and not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", str(key)):
        found.append(
            Finding(
                host,
                "pgbackrest_tls_key",
                "(hidden)",
                f"a PEM private key: {why}",
                "put this host's key in the environment's vault",
            )
        )
    return found


#: The shortest repository passphrase preflight accepts (openssl rand -base64 48 gives 64).
CIPHER_PASS_MIN = 20


def backups(  # noqa: PLR0912 (one rule per line of the role's README)
    host: str, v: Mapping[str, Any], hostvars: Mapping[str, Mapping[str, Any]], groups
) -> list[Finding]:
    """pgBackRest (pgbackrest role). A database host's repository group, when the
    inventory has it or the host names one, holds a host of ``backups`` (site.yml's play)
    that is no database host, the same for every host of a replicated set; a repository
    keeps a stanza, and has a passphrase and two schedules of its own; both sides have
    their TLS material."""
    found: list[Finding] = []
    group = str(v["pgbackrest_repository_group"] or "")
    default = role_defaults("pgbackrest")["pgbackrest_repository_group"]
    if host in groups.get(pgbackrest.DATABASES, ()) and group:
        members = list(groups.get(group, ()))
        repository = members[0] if members else None
        problem = ""
        if repository is None and group != default:
            problem = "the inventory has no such group, or it is empty"
        elif repository and repository not in groups.get(pgbackrest.REPOSITORIES, ()):
            problem = (
                f"its first host, {repository}, is not in {pgbackrest.REPOSITORIES} "
                "(site.yml's play)"
            )
        elif repository and repository in groups.get(pgbackrest.DATABASES, ()):
            problem = (
                f"its first host, {repository}, is a database host (it would be lost with them)"
            )
        else:
            stanza = pgbackrest.stanza_of(host, v)
            peers = [
                h
                for h in groups.get(stanza, ())
                if h != host
                and h in hostvars
                and pgbackrest.repository_of(h, pgbackrest.database_vars(h, hostvars), groups)
                != repository
            ]
            if peers and v["postgresql_replication_group"]:
                problem = (
                    f"the set's other hosts ({', '.join(peers)}) keep another repository "
                    "(a set is one stanza)"
                )
        if problem:
            found.append(
                Finding(
                    host,
                    "pgbackrest_repository_group",
                    group,
                    f"a group whose first host keeps the repository: {problem}",
                    f"put a host of its own in {pgbackrest.REPOSITORIES} and in this group, "
                    "the same for every host of the set",
                )
            )
        elif repository:
            found += _pem_material(host, v, f"{repository} backs this host up over TLS")
    if host in groups.get(pgbackrest.REPOSITORIES, ()):
        if host in groups.get(pgbackrest.DATABASES, ()):
            return found  # said on the database side
        if not pgbackrest.peers(host, groups, hostvars):
            found.append(
                Finding(
                    host,
                    "pgbackrest_repository_group",
                    "(no database host names it)",
                    "a repository host keeps the backups of a database host whose "
                    "pgbackrest_repository_group holds it first",
                    "name its group in the database hosts' pgbackrest_repository_group, or "
                    f"take it out of {pgbackrest.REPOSITORIES}",
                )
            )
        secret = v["pgbackrest_cipher_pass"]
        if not _sealed(secret) and len(str(secret)) < CIPHER_PASS_MIN:
            found.append(
                Finding(
                    host,
                    "pgbackrest_cipher_pass",
                    "(hidden)",
                    f"a passphrase of {CIPHER_PASS_MIN} characters or more: the repository "
                    "is encrypted with it",
                    "put one in the environment's vault (openssl rand -base64 48)",
                )
            )
        if v["pgbackrest_full_schedule"] == v["pgbackrest_diff_schedule"]:
            found.append(
                Finding(
                    host,
                    "pgbackrest_diff_schedule",
                    v["pgbackrest_diff_schedule"],
                    "another time than pgbackrest_full_schedule (a stanza takes one backup at "
                    "a time: the second would fail on the first's lock)",
                    "give the differentials the days the full backups do not run",
                )
            )
        found += _pem_material(host, v, "the database hosts archive and restore over TLS")
    return found


def check(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """Every rule of this module over the whole inventory."""
    findings = []
    for host in hostvars:
        roles = roles_of(host, groups)
        v = with_defaults(roles_of(host, groups), hostvars[host])
        findings += ports(host, v, roles)
        if "nginx" in roles:
            findings += keepalive(host, v, hostvars, groups)
        if "python_app" in roles:
            findings += redis_endpoint(host, v, hostvars, groups)
            findings += redis_group(host, v, hostvars, groups)
            findings += database_group(host, v, hostvars, groups)
        if "redis" in roles:
            findings += replication(host, v, hostvars, groups)
        if "postgresql" in roles:
            findings += database_peers(host, v, hostvars, groups)
            findings += database_set(host, v, hostvars, groups)
        if "celery_worker" in roles:
            findings += broker(host, v, hostvars, groups)
        if "pgbackrest" in roles:
            findings += backups(host, v, hostvars, groups)
    return findings
