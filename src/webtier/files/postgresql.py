"""What the postgresql role derives: its version, memory settings, the users' SCRAM
verifiers, PgBouncer's limits, and which PgBouncer settings need a restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from webtier.files import pgbackrest
from webtier.files.facts import listen_addresses
from webtier.model import derive
from webtier.model.inventory import Groups, HostVars, role_defaults

#: PBKDF2 rounds of the SCRAM verifiers (PostgreSQL's own default, scram_iterations).
SCRAM_ITERATIONS = 4096
#: A verifier as PostgreSQL stores it: SCRAM-SHA-256$<rounds>:<salt>$<StoredKey>:<ServerKey>.
VERIFIER = re.compile(
    r"SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)"
)


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """StoredKey and ServerKey of ``password`` under ``salt`` (RFC 5802, section 3)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` (RFC 5802/7677) as PostgreSQL stores it
    and PgBouncer's auth_file takes it, with a random salt unless one is given. The
    database and PgBouncer hold the same verifier, so PgBouncer logs in to the server
    with the keys of the client's own SCRAM exchange, and the password never reaches
    the host. (hashlib, hmac, secrets: the standard library has every primitive; no
    SCRAM package is needed for a few lines.)"""
    salt = secrets.token_bytes(16) if salt is None else salt
    stored_key, server_key = _keys(password, salt, SCRAM_ITERATIONS)

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether ``verifier`` (as the server stores it; None or any other form: no) is one
    of ``password``: its keys derived again under its own salt and rounds."""
    match = VERIFIER.fullmatch(verifier or "")
    if not match:
        return False
    rounds, salt, stored_key, server_key = match.groups()
    keys = _keys(password, base64.b64decode(salt), int(rounds))
    wanted = base64.b64decode(stored_key) + base64.b64decode(server_key)
    return hmac.compare_digest(keys[0] + keys[1], wanted)


def kept_verifiers(
    databases: Sequence[Mapping[str, Any]], stored: Mapping[str, str | None]
) -> dict[str, str]:
    """The verifier each database's user is to have: the one the server stores (``stored``,
    user: verifier) while it is still one of the user's password, else a new one with a
    random salt. Both engines ask once per run, before any file is rendered, so the
    server and PgBouncer get the same new verifier; a re-run keeps it (no change), and a
    replica, which stores the primary's, keeps that one. The salt is never derived from
    the password: a stolen verifier costs a PBKDF2 of 4096 rounds per guess, and the
    same password gives a different verifier in every environment."""
    kept: dict[str, str] = {}
    for database in databases:
        user, password = str(database["user"]), str(database["password"])
        if user not in kept:
            verifier = stored.get(user)
            kept[user] = (
                verifier
                if verifier and scram_matches(verifier, password)
                else scram_verifier(password)
            )
    return kept


#: What a render (which reaches no host) writes for a verifier: a deploy chooses it.
UNREAD = "SCRAM-SHA-256$chosen-at-deploy:the-server's-own-while-the-password-matches"


def postgresql_users(
    databases: Sequence[Mapping[str, Any]], verifiers: Mapping[str, str] | None = None
) -> list[dict[str, str]]:
    """Each database's user and its verifier (PgBouncer's auth_file and the role's
    password in the server): ``verifiers`` as the deploy chose them (kept_verifiers);
    a render, which has not read the server, writes UNREAD (both engines alike)."""
    users = dict.fromkeys(str(d["user"]) for d in databases)
    return [
        {"name": name, "verifier": UNREAD if verifiers is None else verifiers[name]}
        for name in users
    ]


#: The failover manager's own users: the standbys' replication and pg_rewind (on the
#: database hosts) and the keepers' login to the monitor (on the monitor), each by SCRAM
#: with a password of the vault. (The monitor's health checks log in as
#: pgautofailover_monitor with a password pg_auto_failover builds in: pg_hba.conf admits
#: that user without one, from the monitor's address only.)
REPLICATOR = "pgautofailover_replicator"
KEEPER = "autoctl_node"


#: What pg_rewind runs on the new primary when an old primary rejoins: the role keeps the
#: replication user no superuser (its password is in every set host's .pgpass), so it is
#: granted these (PostgreSQL's pg_rewind documentation); without them pg_auto_failover
#: falls back to copying the whole primary (pg_basebackup).
REWIND_FUNCTIONS = (
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
)


def rewind_rights() -> dict[str, str]:
    """The SQL that counts the rewind functions the replication user may not run yet
    (``missing``), and the grant of them all (``grant``): run on the primary."""
    functions = ", ".join(f"'{f}'" for f in REWIND_FUNCTIONS)
    return {
        "missing": (
            f"SELECT count(*) FROM unnest(ARRAY[{functions}]::regprocedure[]) AS f "
            f"WHERE CASE WHEN to_regrole('{REPLICATOR}') IS NULL THEN false "
            f"ELSE NOT has_function_privilege('{REPLICATOR}', f, 'EXECUTE') END"
        ),
        "grant": f"GRANT EXECUTE ON FUNCTION {', '.join(REWIND_FUNCTIONS)} TO {REPLICATOR}",
    }


def wait_for_server(port: int = 5432, seconds: int = 90) -> str:
    """A shell command, run as the postgres system user, that waits up to ``seconds`` for
    the local server on ``port`` to answer three times in a row, two seconds apart.
    pg_auto_failover's unit is up before the server it starts, and a new standby's
    keeper stops and starts its server again as it catches up: one answer is not a
    server that stays up (a first converge failed on the read right after it)."""
    ready = f"pg_isready -q -h /var/run/postgresql -p {port}"
    return (
        f"for i in $(seq {seconds}); do {ready} && sleep 2 && {ready} && sleep 2 && {ready} "
        f"&& exit 0; sleep 1; done; exit 1"
    )


def pg_autoctl_config(pgdata: str) -> str:
    """Where pg_autoctl keeps a node's settings (its XDG path under postgres's home): it
    exists once the node is registered with the monitor."""
    return f"/var/lib/postgresql/.config/pg_autoctl{pgdata}/pg_autoctl.cfg"


def _addresses(name: str, resolved: Mapping[str, Sequence[str]] | None) -> list[str]:
    """The IPv4 addresses of ``name`` as the host resolved it (pg_hba.conf takes
    addresses: a host name there needs reverse DNS to match), its name in a render."""
    if resolved is None:
        return [name]
    found = list(resolved.get(name) or ())
    if not found:
        raise ValueError(
            f"{name} cannot be resolved on this host: pg_hba.conf would not admit it. "
            "Fix the host's name resolution (or /etc/hosts) and run again"
        )
    return found


def failover_names(host: str, v: Mapping[str, Any], groups: Groups) -> list[str]:
    """The hosts a replicated database host's rules name: its peers and the monitor."""
    group = v.get("postgresql_replication_group") or ""
    if not group:
        return []
    peers = [h for h in groups.get(group, ()) if h != host]
    return peers + list(groups.get(v["postgresql_monitor_group"], ()))[:1]


def failover_users(v: Mapping[str, Any]) -> list[dict[str, str]]:
    """pg_auto_failover's users a replicated host gives passwords to on its set's primary
    (verifiers kept as the apps' users' are); none for a host that does not replicate."""
    if not v.get("postgresql_replication_group"):
        return []
    return [{"user": REPLICATOR, "password": str(v["postgresql_replication_password"])}]


def failover(
    host: str,
    v: Mapping[str, Any],
    groups: Groups,
    hostvars: HostVars,
    resolved: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any] | None:
    """A replicated database host's part in its set (postgresql_replication_group,
    watched by pg_auto_failover's monitor, the first host of postgresql_monitor_group):
    its peers and the monitor with their addresses, the monitor's port and the keeper's
    network_partition_timeout (derive.failover_timeouts, from the monitor's settings).
    None for a host that does not replicate."""
    group = v.get("postgresql_replication_group") or ""
    if not group:
        return None
    monitors = list(groups.get(v["postgresql_monitor_group"], ()))
    if not monitors:
        raise ValueError(
            f"postgresql_monitor_group={v['postgresql_monitor_group']}: the inventory has "
            "no such group (a replicated set needs pg_auto_failover's monitor)"
        )
    monitor = monitors[0]
    mv = {**role_defaults("postgresql_monitor"), **hostvars.get(monitor, {})}
    if not mv["postgresql_monitor_password"]:
        raise ValueError(
            f"postgresql_monitor_password of {monitor} is empty: the keepers log in to the "
            "monitor by SCRAM only (set it in the environment's vault)"
        )
    timing = derive.failover_timeouts(
        mv["postgresql_monitor_health_check_period"],
        mv["postgresql_monitor_unhealthy_timeout"],
        mv["postgresql_monitor_demote_timeout"],
    )
    return {
        "node": host,
        "peers": [
            {"name": p, "addresses": _addresses(p, resolved)}
            for p in groups.get(group, ())
            if p != host
        ],
        "monitor": {
            "name": monitor,
            "addresses": _addresses(monitor, resolved),
            "port": int(mv["postgresql_monitor_port"]),
            "password": str(mv["postgresql_monitor_password"]),
        },
        "network_partition_timeout": timing["network_partition_timeout"],
    }


def pg_autoctl_settings(listen: str, network_partition_timeout: int | None = None) -> list:
    """pg_autoctl's own settings the role derives (``pg_autoctl config set KEY VALUE``),
    each with what applies it. pg_autoctl starts its server with ``-h`` from
    ``postgresql.listen_addresses`` (``*`` as it creates it), which wins over any
    postgresql.conf: the role's listen addresses (loopback and the host's own) go there,
    and only a restart applies them. A keeper's fencing timeout applies at a reload."""
    found = [{"key": "postgresql.listen_addresses", "value": listen, "apply": "restart"}]
    if network_partition_timeout is not None:
        found.append(
            {
                "key": "timeout.network_partition_timeout",
                "value": str(network_partition_timeout),
                "apply": "reload",
            }
        )
    return found


def pgpass(entries: Sequence[tuple[str, str, Any]]) -> list[dict[str, str]]:
    """~/.pgpass entries of the postgres system user: (database, user, password) each."""
    return [{"database": d, "user": u, "password": str(p)} for d, u, p in entries]


def monitor_derived(  # noqa: PLR0913, PLR0917 (the role's inputs, as configs.derived has them)
    host: str,
    v: Mapping[str, Any],
    release: str,
    groups: Groups,
    resolved: Mapping[str, Sequence[str]] | None = None,
    ipv4: str | None = None,
) -> dict[str, Any]:
    """The monitor's version, its health-check timing (derive.failover_timeouts), the
    database hosts its keepers log in from (every host whose monitor group holds it) and
    pg_autoctl's settings (its server on loopback and the host's address, ``ipv4``)."""
    nodes = [h for h in groups.get(v["postgresql_monitor_databases_group"], ()) if h != host]
    version = v["__postgresql_monitor_versions"][release]
    return {
        "__pg_autoctl_pgdata": f"/var/lib/postgresql/{version}/monitor",
        "__postgresql_monitor_pg_autoctl": pg_autoctl_settings(
            ",".join(listen_addresses(["localhost", "private"], ipv4))
        ),
        "__postgresql_monitor_users": [
            {"user": KEEPER, "password": str(v["postgresql_monitor_password"])}
        ],
        # the monitor's own pg_autoctl logs in to it
        "__pgpass": pgpass([("pg_auto_failover", KEEPER, v["postgresql_monitor_password"])]),
        "__postgresql_monitor_version": version,
        "__postgresql_monitor_timing": derive.failover_timeouts(
            v["postgresql_monitor_health_check_period"],
            v["postgresql_monitor_unhealthy_timeout"],
            v["postgresql_monitor_demote_timeout"],
        ),
        "__postgresql_monitor_nodes": [
            {"name": n, "addresses": _addresses(n, resolved)} for n in nodes
        ],
    }


def postgresql_derived(  # noqa: PLR0913, PLR0917 (the role's inputs, as configs.derived has them)
    v: Mapping[str, Any],
    release: str,
    memtotal_mb: int,
    ipv4: str | None = None,
    verifiers: Mapping[str, str] | None = None,
    groups: Groups | None = None,
    hostvars: HostVars | None = None,
    resolved: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The PostgreSQL role's version (by Debian release), memory settings, users'
    verifiers (``verifiers``: kept_verifiers), PgBouncer's listen addresses (``private``:
    ``ipv4``), server connections and descriptor limit, and the host's part in a
    replicated set (:func:`failover`, None when it does not replicate)."""
    databases = v["postgresql_databases"]
    plan = failover(str(v.get("inventory_hostname", "")), v, groups or {}, hostvars or {}, resolved)
    pgdata = f"/var/lib/postgresql/{v['__postgresql_versions'][release]}/main"
    if plan:
        plan["listen"] = ",".join(listen_addresses(["localhost", "private"], ipv4))
        plan["pgdata"] = pgdata
        plan["config"] = pg_autoctl_config(pgdata)
        plan["pg_autoctl"] = pg_autoctl_settings(plan["listen"], plan["network_partition_timeout"])
        plan["rewind"] = rewind_rights()
        plan["wait"] = wait_for_server()
    servers = derive.pgbouncer_server_connections(
        len(databases),
        v["postgresql_pgbouncer_default_pool_size"],
        v["postgresql_pgbouncer_reserve_pool_size"],
    )
    return {
        "__postgresql_version": v["__postgresql_versions"][release],
        "__postgresql_memory": derive.postgresql_memory(
            v["postgresql_shared_buffers"],
            v["postgresql_effective_cache_size"],
            v["postgresql_maintenance_work_mem"],
            memtotal_mb,
            v.get("webtier_memory_mb"),
        ),
        "__postgresql_users": postgresql_users(databases, verifiers),
        "__postgresql_pgbouncer_listen": listen_addresses(v["postgresql_pgbouncer_listen"], ipv4),
        "__postgresql_pgbouncer_nofile": derive.pgbouncer_nofile(
            v["postgresql_pgbouncer_max_client_conn"], servers
        ),
        "__postgresql_failover": plan,
        # the WAL archive, when the host has a repository (pgbackrest role)
        "__postgresql_archive": pgbackrest.archive(
            str(v.get("inventory_hostname", "")), v, groups or {}
        ),
        # pg_auto_failover's users on the primary, given passwords as the apps' are
        "__postgresql_failover_users": failover_users(v),
        "__pg_autoctl_pgdata": pgdata,
        # the standbys log in to the primary, the keeper to the monitor
        "__pgpass": pgpass(
            [
                ("*", REPLICATOR, v["postgresql_replication_password"]),
                ("pg_auto_failover", KEEPER, plan["monitor"]["password"]),
            ]
        )
        if plan
        else [],
    }


#: What PgBouncer reads only at start: its listeners (a reload keeps the old ones).
PGBOUNCER_LISTENERS = re.compile(r"(?m)^(?:listen_\w+|unix_socket_dir)[ \t]*=.*$")


def pgbouncer_listeners(ini: str) -> list[str]:
    """The lines of a pgbouncer.ini that only a restart applies (both engines restart
    PgBouncer when these differ between the live file and the new one)."""
    return [line.strip() for line in PGBOUNCER_LISTENERS.findall(ini)]
