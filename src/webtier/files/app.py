"""What the python_app role derives: how the app reaches its Redis and its database (its
environment files), which host runs a release's once-commands and how they run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from webtier.files.render import environment
from webtier.model.access import redis_key_prefix
from webtier.model.inventory import Groups, HostVars, role_defaults
from webtier.model.topology import roles_of


def chosen_database(databases: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The database of a tier's ``postgresql_databases`` an app names
    (``python_app_database``): the one of that name, the first when the name is empty;
    None when there is no such database."""
    wanted = name or (databases[0]["name"] if databases else "")
    return next((d for d in databases if d["name"] == wanted), None)


def database_ca_path(name: str) -> str:
    """Where python_app writes the CA of the database tier's PgBouncer certificates."""
    return f"/etc/webtier/apps/{name}.database-ca.crt"


def app_database_env(
    group: str, name: str, groups: Groups, hostvars: HostVars, app: str = ""
) -> tuple[dict[str, str], dict[str, str], str]:
    """How an app reaches its database (python_app_database_group and
    python_app_database): ``DATABASE_URL``, the secret ``DATABASE_PASSWORD``, and the
    CA's PEM text of the tier's TLS ("" without it); all empty without a group.

    The URL names every host of the group, each through its own PgBouncer
    (postgresql://user@db1:6432,db2:6432/name, libpq's multi-host form, no password in
    it). With more than one host it asks for ``target_session_attrs=read-write``: libpq
    tries the hosts in turn and keeps the one whose server takes writes, so a new
    connection after a failover reaches the new primary with no inventory change and
    no restart. With postgresql_pgbouncer_tls, ``sslmode=verify-full`` against the CA
    python_app writes for ``app``. The database's settings are the group's first
    host's (every host of the tier holds the same databases: invariants.database_group)."""
    if not group:
        return {}, {}, ""
    hosts = list(groups.get(group, ()))
    if not hosts:
        raise ValueError(f"python_app_database_group={group}: the inventory has no such group")
    first = {**role_defaults("postgresql"), **hostvars[hosts[0]]}
    database = chosen_database(first["postgresql_databases"], name)
    if database is None:
        raise ValueError(
            f"python_app_database={name!r}: {hosts[0]} (python_app_database_group={group}) "
            "has no such database in postgresql_databases"
        )
    # Their inventory names, as the firewall names hosts (see app_redis_address); the
    # names their certificates hold, which verify-full checks.
    port = role_defaults("postgresql")["postgresql_pgbouncer_port"]
    addresses = ",".join(f"{h}:{hostvars[h].get('postgresql_pgbouncer_port', port)}" for h in hosts)
    query = ["target_session_attrs=read-write"] if len(hosts) > 1 else []
    ca = ""
    if first["postgresql_pgbouncer_tls"]:
        query += ["sslmode=verify-full", f"sslrootcert={database_ca_path(app)}"]
        ca = str(first["postgresql_pgbouncer_tls_ca_cert"])
    url = f"postgresql://{database['user']}@{addresses}/{database['name']}"
    if query:
        url += "?" + "&".join(query)
    return {"DATABASE_URL": url}, {"DATABASE_PASSWORD": database["password"]}, ca


def app_redis_address(host: str, hv: Mapping[str, Any]) -> str:
    """The name an app reaches a Redis host by: the one the inventory says it announces,
    else its inventory name, as the firewall names hosts (not ``ansible_host``: how the
    controller reaches it, maybe over another network, or a value a run overrides for
    every host with ``-e``)."""
    return str(hv.get("redis_announce_host", host))


def chosen_redis_user(users: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The user of a Redis host's ``redis_app_users`` an app logs in as: the one of
    ``name`` (python_app_redis_user, else the app's name); None when there is none."""
    return next((u for u in users if u.get("name") == name), None)


def app_redis_user(
    group: str, name: str, users: Sequence[Mapping[str, Any]], first: str
) -> Mapping[str, Any]:
    """:func:`chosen_redis_user`, or the error that names what is missing."""
    user = chosen_redis_user(users, name)
    if user is None:
        raise ValueError(
            f"python_app_redis_user={name}: {first} (python_app_redis_group={group}) has no "
            f"such user in redis_app_users ({', '.join(u['name'] for u in users) or 'none'}); "
            "give the app a user of its own there"
        )
    return user


def app_redis_env(
    group: str, groups: Groups, hostvars: HostVars, name: str = ""
) -> tuple[dict, dict]:
    """(environment, secret environment) an app needs to reach the Redis of ``group``
    as its user ``name`` (of the Redis hosts' ``redis_app_users``), from the Redis
    hosts' own variables: for a set Sentinel watches, the Sentinels' addresses, the
    service name and both passwords (the app asks the Sentinels where the primary is, so
    it follows a failover); else the primary's URL (the host marked primary, or the only
    one); and ``REDIS_KEY_PREFIX``, the prefix of the keys and channels the user
    reaches. No password is ever in a URL: the env names it alone, so it needs no
    encoding and the URL can be logged. Nothing when ``group`` is ''."""
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
    env: dict[str, str] = {}
    secret: dict[str, str] = {}
    user = ""
    if auth:
        chosen = app_redis_user(group, name, var(first, "redis_app_users"), first)
        user = str(chosen["name"])
        secret["REDIS_PASSWORD"] = str(chosen["password"])
        env["REDIS_KEY_PREFIX"] = redis_key_prefix(chosen)
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


def unit_sandbox() -> list[str]:
    """The systemd sandbox of the stack's own services as ``Key=Value`` settings: the one
    copy the unit templates use (templates/macros/systemd.j2), read from it."""
    text = str(environment().get_template("macros/systemd.j2").module.sandbox())
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def release_command(  # noqa: PLR0913, PLR0917 (the app's names and paths, each one)
    command: str, name: str, user: str, release_dir: str, venv: str, env_dir: str
) -> list[str]:
    """The argv that runs one of python_app_release_commands for a release not yet
    switched to: a transient unit (systemd-run) as the app's user, with its env files,
    in the release's source, that source first on the Python path, in the sandbox of the
    app's own units (it may write the release's directory only); the command's first
    word a program of the release's virtualenv, its arguments split at spaces. The
    service manager expands ``$VAR`` in a unit's arguments from its environment, the
    secret env file's too: each ``$`` is passed as ``$$`` (a literal ``$``), so no
    secret is expanded into an argv, the journal or an output."""
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
        *(f"--property={setting}" for setting in unit_sandbox()),
        f"--property=ReadWritePaths={release_dir}",
        f"--setenv=PYTHONPATH={release_dir}/src",
        "--setenv=PYTHONUNBUFFERED=1",
        f"{venv}/bin/{program}",
        *(argument.replace("$", "$$") for argument in arguments),
    ]


def app_env(v: Mapping[str, Any], groups: Groups, hostvars: HostVars) -> dict[str, Any]:
    """The app's two env files' contents: what :func:`app_redis_env` and
    :func:`app_database_env` derive, under what the inventory gives (``python_app_env``
    and ``python_app_secret_env`` win); and the database tier's CA, if it has TLS."""
    env, secret = app_redis_env(
        v["python_app_redis_group"],
        groups,
        hostvars,
        v.get("python_app_redis_user") or v["python_app_name"],
    )
    db_env, db_secret, db_ca = app_database_env(
        v.get("python_app_database_group", ""),
        v.get("python_app_database", ""),
        groups,
        hostvars,
        v["python_app_name"],
    )
    return {
        "__python_app_env": {**env, **db_env, **v["python_app_env"]},
        "__python_app_secret_env": {**secret, **db_secret, **v["python_app_secret_env"]},
        "__python_app_database_ca": db_ca,
    }
