"""Every config file of every host, rendered from the inventory without Ansible.

What the two engines share, so they cannot drift:

- ``templates/files.yml``: which files each role writes (template, destination, owner,
  mode), read by the pyinfra deploy, the render command and ``playbooks/render.yml``;
- :func:`variables`: a host's variables layered as Ansible layers them (role defaults,
  then the inventory, then role vars), resolved with plain Jinja2;
- :func:`derived`: what the roles compute from the host and the inventory before they
  template (effective NOFILE, Redis paths, bind addresses and primary, ACL password
  hashes, the load balancer's plan), from one :class:`Facts` about the host.

``Facts`` are read from the host by a deploy; the render command, which touches no
host, assumes them from the inventory (:meth:`Facts.assumed`).

Command line (the render command)::

    python -m webtier.configs inventory/<env> --out DIR [--profile OVERLAY]

writes ``DIR/<host>/<path>`` for every file, so two environments or two commits can
be compared with ``diff -r``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import ipaddress
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from webtier import ROOT, TEMPLATES, derive, firewall, nginx
from webtier.capacity import roles_of
from webtier.cpu import DEFAULT_CPUS
from webtier.inventory import Inventory, load, role_defaults
from webtier.render import environment

MANIFEST = TEMPLATES / "files.yml"
Groups = Mapping[str, list[str]]
HostVars = Mapping[str, Mapping[str, Any]]
#: The variables the nginx plan reads from the load balancer's own variables.
NGINX_PLAN_INPUTS = (
    "nginx_upstreams",
    "nginx_sites",
    "nginx_listen_backlog",
    "nginx_reuseport",
    "nginx_worker_connections",
    "nginx_worker_rlimit_nofile",
    "nginx_limit_req_zones",
    "nginx_limit_conn_zones",
)
#: What Facts.assumed() reads from a host's variables.
FACT_INPUTS = (
    "kernel_tuning_host_kind",
    "ansible_connection",
    "ansible_host",
    "webtier_cpus",
    "webtier_memory_mb",
    "webtier_release",
    "kernel_tuning_nofile",
    "kernel_tuning_nr_open",
)
#: What derived() reads from a host's variables, per role.
DERIVED_INPUTS = {
    "kernel_tuning": ("kernel_tuning_nofile", "kernel_tuning_nr_open"),
    "firewall": ("inventory_hostname",),
    "nginx": NGINX_PLAN_INPUTS,
    "gunicorn": (
        "gunicorn_worker_class",
        "gunicorn_workers",
        "gunicorn_threads",
        "gunicorn_worker_connections",
        "gunicorn_forwarded_allow_ips",
        "gunicorn_graceful_timeout",
    ),
    "uwsgi": ("uwsgi_processes", "uwsgi_harakiri"),
    "celery_worker": ("celery_worker_queues", "celery_worker_time_limit"),
    "python_app": (
        "python_app_env",
        "python_app_secret_env",
        "python_app_redis_group",
        "python_app_database_group",
        "python_app_database",
    ),
    "postgresql": (
        "__postgresql_versions",
        "postgresql_databases",
        "postgresql_shared_buffers",
        "postgresql_effective_cache_size",
        "postgresql_maintenance_work_mem",
        "postgresql_pgbouncer_default_pool_size",
        "postgresql_pgbouncer_reserve_pool_size",
        "postgresql_pgbouncer_max_client_conn",
        "webtier_memory_mb",
    ),
    "redis": (
        "redis_maxclients",
        "__redis_engines",
        "redis_engine",
        "redis_sentinel",
        "redis_maxmemory",
        "redis_bind",
        "redis_admin_password",
        "redis_app_password",
        "redis_replication_password",
        "redis_sentinel_auth_password",
        "redis_replication_group",
        "redis_port",
        "redis_announce_host",
    ),
}


#: Prints what a host's memory is: MemTotal (kB), then the lowest memory limit of the
#: cgroups above PID 1 (bytes, or ``max``). A container's limit is on its own cgroup,
#: which PID 1 (systemd) may have left for a child (init.scope): the walk goes up to the
#: root. Both engines run it and hand the two lines to ``derive.granted_memory_mb``.
#: No ``${...}`` in it: systemd-run (the kernel_tuning probe) expands that form itself.
MEMORY_PROBE = (
    "awk '/^MemTotal:/ {print $2}' /proc/meminfo; "
    "c=$(sed -n 's/^[0-9]*:memory:\\(.*\\)$/\\1/p' /proc/1/cgroup); "
    "b=/sys/fs/cgroup/memory; f=memory.limit_in_bytes; "
    "[ -n \"$c\" ] || { c=$(sed -n 's/^0::\\(.*\\)$/\\1/p' /proc/1/cgroup); "
    "b=/sys/fs/cgroup; f=memory.max; }; "
    'm=max; while :; do v=$(cat "$b$c/$f" 2>/dev/null) || v=max; '
    'case $v in *[!0-9]*|\'\') ;; *) [ "$m" = max ] || [ "$v" -lt "$m" ] && m=$v ;; esac; '
    "case $c in ''|/) break ;; esac; c=$(dirname \"$c\"); done; echo $m"
)


#: Prints what a host is before the kernel_tuning role changes it: the container it runs
#: in (systemd-detect-virt: ``none`` on a machine), then its service manager's NOFILE
#: hard limit. Both engines run it and read it with ``host_kind``.
HOST_KIND_PROBE = (
    "systemd-detect-virt --container || true; awk '/^Max open files/ {print $5}' /proc/1/limits"
)


def kernel_host(kind: str, probe_output: str, nofile: int, nr_open: int) -> dict[str, Any]:
    """What HOST_KIND_PROBE printed, read with ``kernel_tuning_host_kind``: whether the
    host is a container, its service manager's NOFILE hard limit (None: unlimited) and
    the NOFILE limit the kernel_tuning role can give services there."""
    virt, pid1_text = [*probe_output.split(), "", ""][:2]
    in_container = kind == "container" or (kind == "auto" and virt not in ("", "none"))
    pid1 = None if pid1_text in ("", "unlimited") else int(pid1_text)
    return {
        "in_container": in_container,
        "pid1_nofile_hard": pid1,
        "nofile_effective": nofile_effective(int(nofile), int(nr_open), in_container, pid1),
    }


@dataclass(frozen=True)
class Facts:
    """What a role reads from the host itself before it templates."""

    cpus: int
    #: The NOFILE hard limit of the service manager (PID 1); None: not capped by it.
    pid1_nofile_hard: int | None
    #: The NOFILE hard limit a service started now gets (kernel_tuning publishes it).
    nofile_hard: int
    in_container: bool
    memtotal_mb: int
    #: The address of the host's default route (Redis ``private`` binds), if known.
    ipv4: str | None
    #: Whether this uWSGI knows --max-requests-delta (2.0.22 and later).
    uwsgi_max_requests_delta: bool = True
    #: Debian's codename (what its packages spell differently, e.g. nginx's HTTP/2).
    release: str = "trixie"
    #: The app release the host runs (its ``current`` link), if any.
    running_release: str | None = None
    #: Whom the local Sentinel names primary ('host', 'port'), if it runs: it wins over
    #: the inventory (after a failover the inventory's primary is a replica).
    redis_sentinel_says: tuple[str, ...] = ()
    #: Addresses of the names the firewall admits, resolved on the host (None: keep
    #: the names, as the render command does: it reaches no host).
    resolved: Mapping[str, Sequence[str]] | None = None

    def variables(self) -> dict[str, Any]:
        """The facts the roles' variables read (Ansible: set by a task, above role vars)."""
        return (
            {"__python_app_running_release": self.running_release} if self.running_release else {}
        )

    @classmethod
    def assumed(cls, hostvars: Mapping[str, Any]) -> Facts:
        """The facts of a host nobody asked, from its inventory: ``webtier_cpus`` (DEFAULT_CPUS),
        ``webtier_memory_mb`` (4096), ``webtier_release`` (trixie), a container when the
        connection is docker or ``kernel_tuning_host_kind`` says so, the address when
        ``ansible_host`` is one."""
        kind = hostvars.get("kernel_tuning_host_kind", "auto")
        connection = str(hostvars.get("ansible_connection", "ssh"))
        address = str(hostvars.get("ansible_host", ""))
        try:
            ipv4 = str(ipaddress.IPv4Address(address))
        except ValueError:
            ipv4 = None
        in_container = kind == "container" or (kind == "auto" and connection.endswith("docker"))
        kernel = {**role_defaults("kernel_tuning"), **hostvars}
        return cls(
            cpus=int(hostvars.get("webtier_cpus", DEFAULT_CPUS)),
            pid1_nofile_hard=None,
            nofile_hard=nofile_effective(
                kernel["kernel_tuning_nofile"], kernel["kernel_tuning_nr_open"], in_container, None
            ),
            in_container=in_container,
            memtotal_mb=int(hostvars.get("webtier_memory_mb", 4096)),
            ipv4=ipv4,
            release=str(hostvars.get("webtier_release", "trixie")),
        )

    @classmethod
    def read(
        cls,
        hostvars: Mapping[str, Any],
        effective: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Facts:
        """The facts a role read from the host under Ansible: ``effective``
        (kernel_tuning_effective: cpus, nofile_hard, in_container, memory_mb, release)
        and ``extra`` (what the role read itself, by field name: pid1_nofile_hard,
        ipv4, uwsgi_max_requests_delta, running_release, redis_sentinel_says, resolved,
        or ``getent``: name -> what ``getent ahostsv4 NAME`` printed, read into
        resolved); what neither gives is assumed from the inventory, as in a render."""
        given: dict[str, Any] = {}
        if effective:
            given = {
                "cpus": int(effective["cpus"]),
                "nofile_hard": int(effective["nofile_hard"]),
                "in_container": bool(effective["in_container"]),
                "memtotal_mb": int(effective["memory_mb"]),
                "release": str(effective["release"]),
            }
        extra = dict(extra or {})
        if "getent" in extra:  # name: what `getent ahostsv4 NAME` printed on the host
            extra["resolved"] = {
                name: firewall.addresses(name, text) for name, text in extra.pop("getent").items()
            }
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(extra) - fields)
        if unknown:
            raise ValueError(f"facts: no such fact {', '.join(unknown)} (known: {sorted(fields)})")
        for name, value in extra.items():
            if name == "redis_sentinel_says":
                value = tuple(value or ())  # noqa: PLW2901 (as the dataclass holds it)
            elif name == "pid1_nofile_hard":
                value = None if value in (None, "", "None") else int(value)  # noqa: PLW2901
            elif name in ("in_container", "uwsgi_max_requests_delta") and isinstance(value, str):
                value = value.lower() == "true"  # noqa: PLW2901 (a templated boolean's text)
            given[name] = value
        return replace(cls.assumed(hostvars), **given)


@dataclass(frozen=True)
class File:
    """One rendered config file of a host."""

    role: str
    template: str
    dest: str
    owner: str
    group: str
    mode: str
    content: str
    secret: bool = False


@cache
def manifest() -> dict[str, list[dict[str, Any]]]:
    """``templates/files.yml``: the files of each role."""
    return yaml.safe_load(MANIFEST.read_text())


@cache
def _role_file(role: str, kind: str) -> dict[str, Any]:
    path = ROOT / "roles" / role / kind / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


@cache
def inputs(role: str) -> list[str]:
    """Every variable ``role``'s files read: their templates, the manifest's
    expressions, derived() and the assumed facts (what the Ansible path passes in)."""
    env = environment()
    names = set(FACT_INPUTS) | set(DERIVED_INPUTS.get(role, ()))
    for spec in manifest().get(role, []):
        texts = [(TEMPLATES / spec["template"]).read_text(), spec["dest"]]
        texts += [spec.get(k, "") for k in ("owner", "group")]
        texts += [
            "{{ " + e + " }}"
            for e in [spec.get("when", "True"), *(spec.get("loop") or {}).values()]
        ]
        texts += ["{{ " + e + " }}" for e in (spec.get("vars") or {}).values()]
        for text in texts:
            names |= jinja2.meta.find_undeclared_variables(env.parse(text))
    return sorted(names)


def variables(
    inventory: Inventory, host: str, roles: list[str], facts: Facts | None = None
) -> Mapping[str, Any]:
    """``host``'s variables as its roles see them: every role's defaults, then the
    inventory, then every role's vars (Ansible's precedence for these three), then what
    the roles read from the host (``facts``; none in a render)."""
    below: dict[str, Any] = {}
    above: dict[str, Any] = {"role_path": str(ROOT / "roles" / roles[-1])}
    for role in roles:
        below.update(role_defaults(role))
        above.update(_role_file(role, "vars"))
    return inventory.variables(host, below, {**above, **(facts.variables() if facts else {})})


def nofile_effective(nofile: int, nr_open: int, in_container: bool, pid1_hard: int | None) -> int:
    """The NOFILE limit services really get: what was asked, capped by what the host can
    grant (inside a container the service manager's own hard limit, else fs.nr_open)."""
    ceiling = pid1_hard if in_container and pid1_hard is not None else nr_open
    return min(int(nofile), int(ceiling))


def password_hash(password: str) -> str:
    """The SHA-256 hex digest Redis' ACL files take (``#<hash>``)."""
    return hashlib.sha256(str(password).encode()).hexdigest()


def redis_password_hashes(passwords: Mapping[str, str]) -> dict[str, str]:
    """The ACL file's hash of each user's password, by user kind."""
    return {kind: password_hash(password) for kind, password in passwords.items()}


#: PBKDF2 rounds of the SCRAM verifiers (PostgreSQL's own default, scram_iterations).
SCRAM_ITERATIONS = 4096


def scram_verifier(user: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` (RFC 5802/7677) as PostgreSQL stores it
    and PgBouncer's auth_file takes it: ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:
    <ServerKey>``. The database and PgBouncer hold the same verifier, so PgBouncer logs
    in to the server with the keys of the client's own SCRAM exchange, and no plaintext
    password is on the host. The salt is derived from the user and the password, not
    random: each run and both engines write the same verifier (no change to report), and
    a password change still changes the salt. (hashlib, hmac: the standard library has
    every primitive; no SCRAM package is needed for five lines.)"""
    salt = hashlib.sha256(f"webtier-scram:{user}:{password}".encode()).digest()[:16]
    salted = hashlib.pbkdf2_hmac("sha256", str(password).encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def postgresql_users(databases: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each database's user and the verifier of its password (PgBouncer's auth_file and
    the role's password in the server)."""
    return [
        {"name": d["user"], "verifier": scram_verifier(d["user"], d["password"])} for d in databases
    ]


def postgresql_derived(v: Mapping[str, Any], release: str, memtotal_mb: int) -> dict[str, Any]:
    """The PostgreSQL role's version (by Debian release), memory settings, users'
    verifiers and PgBouncer's server connections and descriptor limit."""
    databases = v["postgresql_databases"]
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
        "__postgresql_users": postgresql_users(databases),
        "__postgresql_pgbouncer_nofile": derive.pgbouncer_nofile(
            v["postgresql_pgbouncer_max_client_conn"], servers
        ),
    }


#: What PgBouncer reads only at start: its listeners (a reload keeps the old ones).
PGBOUNCER_LISTENERS = re.compile(r"(?m)^(?:listen_\w+|unix_socket_dir)[ \t]*=.*$")


def pgbouncer_listeners(ini: str) -> list[str]:
    """The lines of a pgbouncer.ini that only a restart applies (both engines restart
    PgBouncer when these differ between the live file and the new one)."""
    return [line.strip() for line in PGBOUNCER_LISTENERS.findall(ini)]


def chosen_database(databases: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The database of a tier's ``postgresql_databases`` an app names
    (``python_app_database``): the one of that name, the first when the name is empty;
    None when there is no such database."""
    wanted = name or (databases[0]["name"] if databases else "")
    return next((d for d in databases if d["name"] == wanted), None)


def app_database_env(
    group: str, name: str, groups: Groups, hostvars: HostVars
) -> tuple[dict[str, str], dict[str, str]]:
    """How an app reaches its database (python_app_database_group and
    python_app_database): ``DATABASE_URL`` (postgresql://user@host:port/name, through
    the group's first host's PgBouncer, no password in it) and, secret,
    ``DATABASE_PASSWORD``; both empty without a group."""
    if not group:
        return {}, {}
    hosts = list(groups.get(group, ()))
    if not hosts:
        raise ValueError(f"python_app_database_group={group}: the inventory has no such group")
    host = hosts[0]
    hv = {**role_defaults("postgresql"), **hostvars[host]}
    database = chosen_database(hv["postgresql_databases"], name)
    if database is None:
        raise ValueError(
            f"python_app_database={name!r}: {host} (python_app_database_group={group}) "
            "has no such database in postgresql_databases"
        )
    # Its inventory name, as the firewall names hosts (see app_redis_address).
    address = f"{host}:{hv['postgresql_pgbouncer_port']}"
    return (
        {"DATABASE_URL": f"postgresql://{database['user']}@{address}/{database['name']}"},
        {"DATABASE_PASSWORD": database["password"]},
    )


def redis_bind_addresses(bind: list[str], ipv4: str | None) -> list[str]:
    """``redis_bind`` with ``private`` replaced by the host's address (kept as is when
    the address is unknown, as in a render)."""
    return [a.replace("private", ipv4 or "private") for a in bind]


def redis_primary(  # noqa: PLR0913, PLR0917 (the host's three values, the inventory, Sentinel)
    group: str,
    port: int,
    announce_host: str,
    groups: Groups,
    hostvars: HostVars,
    sentinel_says: list[str] | None = None,
) -> tuple[str, str]:
    """(whom this Redis replicates: 'host port', or '' on the primary; the primary's host
    as the inventory names it). Sentinel's answer, when there is one, wins over the
    inventory: after a failover the inventory's primary is a replica, and rendering it
    as the primary would undo the failover."""
    members = [hostvars[m] for m in groups[group] if m in hostvars]
    primary = next((m for m in members if m.get("redis_replication_role") == "primary"), None)
    if primary is None:
        raise ValueError(
            f"redis_replication_group={group}: no host of it has redis_replication_role=primary"
        )
    host = redis_address(primary["inventory_hostname"], primary)
    if sentinel_says and len(sentinel_says) == 2:
        address = " ".join(sentinel_says)
    else:
        address = f"{host} {primary.get('redis_port', port)}"
    return ("" if address.split()[0] == announce_host else address), host


def redis_address(host: str, hv: Mapping[str, Any]) -> str:
    """The name others reach a Redis host by: the one it announces (Sentinel, replicas),
    else its ansible_host, else its inventory name."""
    return str(hv.get("redis_announce_host", hv.get("ansible_host", host)))


def app_redis_address(host: str, hv: Mapping[str, Any]) -> str:
    """The name an app reaches a Redis host by: the one the inventory says it announces,
    else its inventory name, as the firewall names hosts (not ``ansible_host``: how the
    controller reaches it, maybe over another network, or a value a run overrides for
    every host with ``-e``)."""
    return str(hv.get("redis_announce_host", host))


def app_redis_env(group: str, groups: Groups, hostvars: HostVars) -> tuple[dict, dict]:
    """(environment, secret environment) an app needs to reach the Redis of ``group``,
    from the Redis hosts' own variables: for a set Sentinel watches, the Sentinels'
    addresses, the service name and both passwords (the app asks the Sentinels where the
    primary is, so it follows a failover); else the primary's URL (the host marked
    primary, or the only one). No password is ever in a URL: the env names it alone,
    so it needs no encoding and the URL can be logged. Nothing when ``group`` is ''."""
    if not group:
        return {}, {}
    members = list(groups.get(group, []))
    if not members:
        raise ValueError(f"python_app_redis_group={group}: the inventory has no such group")
    defaults = role_defaults("redis")

    def var(host: str, name: str) -> Any:
        return hostvars[host][name] if name in hostvars[host] else defaults[name]

    first = members[0]
    auth, tls = bool(var(first, "redis_auth")), bool(var(first, "redis_tls"))
    user = str(var(first, "redis_app_user")) if auth else ""
    env: dict[str, str] = {}
    secret: dict[str, str] = {}
    if auth:
        secret["REDIS_PASSWORD"] = str(var(first, "redis_app_password"))
    sentinels = [m for m in members if var(m, "redis_sentinel")]
    if sentinels:
        env["REDIS_SENTINELS"] = ",".join(
            f"{app_redis_address(m, hostvars[m])}:{var(m, 'redis_sentinel_port')}"
            for m in sentinels
        )
        env["REDIS_SENTINEL_SERVICE"] = str(var(first, "redis_sentinel_master_name"))
        env["REDIS_DB"] = "0"
        if user:
            env["REDIS_USERNAME"] = user
        if tls:
            env["REDIS_SSL"] = "true"
        secret["REDIS_SENTINEL_PASSWORD"] = str(var(first, "redis_sentinel_password"))
        return env, secret
    marked = [m for m in members if hostvars[m].get("redis_replication_role") == "primary"]
    primary = (marked or members)[0]
    scheme = "rediss" if tls else "redis"
    at = f"{user}@" if user else ""
    address = f"{app_redis_address(primary, hostvars[primary])}:{var(primary, 'redis_port')}"
    env["REDIS_URL"] = f"{scheme}://{at}{address}/0"
    return env, secret


def app_first_host(name: str, groups: Groups, hostvars: HostVars) -> str | None:
    """The host that runs a release's ``once`` commands (python_app_release_commands):
    the first, in the inventory's order, of the hosts that run the app ``name``."""
    return next(
        (
            h
            for h in groups.get("all", [])
            if "python_app" in roles_of(h, groups)
            and str(hostvars.get(h, {}).get("python_app_name", "")) == str(name)
        ),
        None,
    )


def release_command(  # noqa: PLR0913, PLR0917 (the app's names and paths, each one)
    command: str, name: str, user: str, release_dir: str, venv: str, env_dir: str
) -> list[str]:
    """The argv that runs one of python_app_release_commands for a release not yet
    switched to: a transient unit (systemd-run) as the app's user, with its env files,
    in the release's source, that source first on the Python path; the command's first
    word a program of the release's virtualenv, its arguments split at spaces."""
    program, *arguments = command.split()
    env_files = f"{env_dir}/{name}"
    return [
        "systemd-run",
        "--quiet",
        "--wait",
        "--pipe",
        "--collect",
        f"--uid={user}",
        f"--gid={user}",
        f"--working-directory={release_dir}/src",
        f"--property=EnvironmentFile={env_files}.env",
        f"--property=EnvironmentFile=-{env_files}.secret.env",
        f"--setenv=PYTHONPATH={release_dir}/src",
        "--setenv=PYTHONUNBUFFERED=1",
        f"{venv}/bin/{program}",
        *arguments,
    ]


def app_env(v: Mapping[str, Any], groups: Groups, hostvars: HostVars) -> dict[str, Any]:
    """The app's two env files' contents: what :func:`app_redis_env` derives, under what
    the inventory gives (``python_app_env`` and ``python_app_secret_env`` win)."""
    env, secret = app_redis_env(v["python_app_redis_group"], groups, hostvars)
    db_env, db_secret = app_database_env(
        v.get("python_app_database_group", ""), v.get("python_app_database", ""), groups, hostvars
    )
    return {
        "__python_app_env": {**env, **db_env, **v["python_app_env"]},
        "__python_app_secret_env": {**secret, **db_secret, **v["python_app_secret_env"]},
    }


def derived(
    role: str, v: Mapping[str, Any], facts: Facts, groups: Groups, hostvars: HostVars
) -> dict[str, Any]:
    """What ``role`` computes before it templates, beyond the host's variables.
    ``groups`` and ``hostvars`` are the whole inventory's, as Ansible names them."""
    each = {
        "kernel_tuning": lambda: {
            "kernel_tuning_nofile_effective": nofile_effective(
                v["kernel_tuning_nofile"],
                v["kernel_tuning_nr_open"],
                facts.in_container,
                facts.pid1_nofile_hard,
            )
        },
        "firewall": lambda: {
            "firewall_rules": firewall.plan(
                v["inventory_hostname"], groups, hostvars, facts.resolved
            )
        },
        "gunicorn": lambda: {
            "__gunicorn_cpus": facts.cpus,
            "__gunicorn_nofile": facts.nofile_hard,
            "__gunicorn_sizes": derive.gunicorn_sizes(
                v["gunicorn_worker_class"],
                v["gunicorn_workers"],
                v["gunicorn_threads"],
                v["gunicorn_worker_connections"],
                facts.cpus,
            ),
            "__gunicorn_forwarded_allow_ips": firewall.trusted_proxies(
                v["gunicorn_forwarded_allow_ips"], groups, facts.resolved
            ),
            "__gunicorn_stop_timeout": derive.stop_timeout(
                v["gunicorn_graceful_timeout"], derive.APP_SERVER_STOP_MARGIN
            ),
        },
        "uwsgi": lambda: {
            "__uwsgi_cpus": facts.cpus,
            "__uwsgi_processes": derive.uwsgi_processes(v["uwsgi_processes"], facts.cpus),
            "__uwsgi_nofile": facts.nofile_hard,
            "__uwsgi_features": {"max_requests_delta": facts.uwsgi_max_requests_delta},
            "__uwsgi_stop_timeout": derive.stop_timeout(
                v["uwsgi_harakiri"], derive.APP_SERVER_STOP_MARGIN
            ),
        },
        "celery_worker": lambda: {
            "__celery_worker_queues": derive.celery_queues(v["celery_worker_queues"], facts.cpus),
            "__celery_worker_stop_timeout": derive.stop_timeout(
                v["celery_worker_time_limit"], derive.CELERY_STOP_MARGIN
            ),
        },
        "python_app": lambda: app_env(v, groups, hostvars),
        "nginx": lambda: nginx.plan(
            {k: v[k] for k in NGINX_PLAN_INPUTS}, groups, hostvars, facts.release
        ),
        "redis": lambda: redis_derived(v, facts, groups, hostvars),
        "postgresql": lambda: postgresql_derived(v, facts.release, facts.memtotal_mb),
    }
    return each[role]() if role in each else {}


def short_names(role: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`derived`'s values named without the role's prefix (``__redis_paths`` ->
    ``paths``, ``nginx_sites_resolved`` -> ``sites_resolved``): how a role's tasks read
    them (``__redis.paths``), while the templates see the full names."""
    prefixes = (f"__{role}_", f"{role}_")
    return {
        next((k[len(p) :] for p in prefixes if k.startswith(p)), k): value
        for k, value in values.items()
    }


def redis_derived(
    v: Mapping[str, Any],
    facts: Facts,
    groups: Groups,
    hostvars: HostVars,
) -> dict[str, Any]:
    """The Redis role's paths, units, addresses, primary and ACL password hashes."""
    paths = v["__redis_engines"][v["redis_engine"]]
    out: dict[str, Any] = {
        "__redis_paths": paths,
        "__redis_units": [paths["service"]]
        + ([paths["sentinel_service"]] if v["redis_sentinel"] else []),
        "__redis_in_container": facts.in_container,
        "__redis_nofile": derive.redis_nofile(v["redis_maxclients"]),
        "__redis_maxmemory": derive.redis_maxmemory(v["redis_maxmemory"], facts.memtotal_mb),
        "__redis_bind_addresses": redis_bind_addresses(v["redis_bind"], facts.ipv4),
        "__redis_password_hashes": redis_password_hashes(
            {
                "admin": v["redis_admin_password"],
                "app": v["redis_app_password"],
                "replication": v["redis_replication_password"],
                "sentinel": v["redis_sentinel_auth_password"],
            }
        ),
    }
    if v["redis_replication_group"]:
        replicaof, seed = redis_primary(
            v["redis_replication_group"],
            v["redis_port"],
            v["redis_announce_host"],
            groups,
            hostvars,
            list(facts.redis_sentinel_says),
        )
        out |= {"__redis_replicaof": replicaof, "__redis_sentinel_seed_primary": seed}
    return out


class _Context(Mapping):
    """Derived values over the host's variables, read lazily."""

    def __init__(self, v: Mapping[str, Any], extra: Mapping[str, Any]):
        self.v, self.extra = v, extra

    def __getitem__(self, name: str) -> Any:
        return self.extra[name] if name in self.extra else self.v[name]

    def __iter__(self):
        return iter({**dict.fromkeys(self.v), **dict.fromkeys(self.extra)})

    def __len__(self) -> int:
        return len(set(self.v) | set(self.extra))


def _needed(env: jinja2.Environment, source: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The variables ``source`` reads that the context has (the rest stay undefined)."""
    names = jinja2.meta.find_undeclared_variables(env.parse(source))
    return {n: context[n] for n in names if n in context}


def host_files(
    inventory: Inventory,
    host: str,
    facts: Facts | None = None,
    hostvars: HostVars | None = None,
) -> list[File]:
    """Every config file of ``host``, rendered. ``hostvars``: the whole inventory's
    resolved variables, when the caller already has them (one resolution per render)."""
    roles = roles_of(host, inventory.members)
    v = variables(inventory, host, roles, facts)
    facts = facts or Facts.assumed(v)
    hostvars = inventory.all_host_vars() if hostvars is None else hostvars
    env = environment()
    files = []
    for role in roles:
        for spec in role_files(role, v, facts, inventory.members, hostvars):
            template = env.get_template(spec["template"])
            source = (TEMPLATES / spec["template"]).read_text()
            scope = _Context(v, spec["vars"])
            content = template.render(_needed(env, source, scope))
            fields = {k: spec[k] for k in ("template", "dest", "owner", "group", "mode", "secret")}
            files.append(File(role=role, content=content, **fields))
    return files


def role_files(
    role: str, v: Mapping[str, Any], facts: Facts, groups: Groups, hostvars: HostVars
) -> list[dict[str, Any]]:
    """``role``'s files for a host whose variables are ``v``: template, dest, owner,
    group, mode, secret, and ``vars``, the variables to render it with on top of ``v``
    (derived values, the loop element, the file's own vars)."""
    return _places(role, v, derived(role, v, facts, groups, hostvars))


def _places(role: str, v: Mapping[str, Any], extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    env = environment()
    context = _Context(v, extra)

    def expression(text: str, scope: Mapping[str, Any]) -> Any:
        return env.compile_expression(text)(**_needed(env, "{{ " + text + " }}", scope))

    def string(text: str, scope: Mapping[str, Any]) -> str:
        return env.from_string(text).render(_needed(env, text, scope))

    out = []
    for spec in manifest().get(role, []):
        if "when" in spec and not expression(spec["when"], context):
            continue
        ((name, over),) = (spec.get("loop") or {"_": "[None]"}).items()
        for element in expression(over, context):
            own = {**context.extra, name: element}
            own |= {k: expression(e, _Context(v, own)) for k, e in (spec.get("vars") or {}).items()}
            scope = _Context(v, own)
            out.append(
                {
                    "template": spec["template"],
                    "dest": string(spec["dest"], scope),
                    "owner": string(spec.get("owner", "root"), scope),
                    "group": string(spec.get("group", "root"), scope),
                    "mode": spec.get("mode", "0644"),
                    "secret": bool(spec.get("secret", False)),
                    "vars": {k: x for k, x in own.items() if k != "_"},
                }
            )
    return out


def render(inventory: Inventory, out: Path) -> list[tuple[str, File]]:
    """Write every file of every host to ``out/<host>/<dest>``; touches no host. Nothing
    is written outside ``out`` (a host name or a path that climbs out is refused), and a
    secret file (templates/files.yml) is readable by its owner only."""
    hostvars = inventory.all_host_vars()
    root = out.resolve()
    planned = []  # every path is checked before the first file is written
    for host in inventory.hosts:
        for file in host_files(inventory, host, hostvars=hostvars):
            path = (root / host / file.dest.lstrip("/")).resolve()
            if host in ("", ".", "..") or not path.is_relative_to(root / host):
                raise ValueError(f"{host}: {file.dest} would be written outside {out}/{host}")
            planned.append((host, file, path))
    for _host, file, path in planned:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if file.secret else 0o644
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(descriptor, mode)  # an older copy keeps its mode otherwise
        with os.fdopen(descriptor, "w") as handle:
            handle.write(file.content)
    return [(host, file) for host, file, _ in planned]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webtier.configs",
        description="Render every config file of every host of an environment into a "
        "directory (OUT/<host>/<path>), touching no host.",
    )
    parser.add_argument("inventory", help="inventory/<env>")
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument("--profile", action="append", default=[], help="overlay inventory")
    args = parser.parse_args(argv)
    try:
        written = render(load(args.inventory, *args.profile), args.out)
    except (ValueError, KeyError, jinja2.TemplateError) as error:
        print(f"render: {error}", file=sys.stderr)
        return 1
    hosts = {host for host, _ in written}
    print(f"{len(written)} files of {len(hosts)} hosts written under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
