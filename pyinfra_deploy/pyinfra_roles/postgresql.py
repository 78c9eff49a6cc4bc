"""postgresql as the role does it: the candidates checked, a reload and a restart only for
what PostgreSQL reports pending, users (their SCRAM verifiers) and databases changed
only when they differ, PgBouncer restarted only for new listeners."""

from __future__ import annotations

import shlex

from pyinfra import host, state
from pyinfra.facts.server import Command
from pyinfra.operations import files, server, systemd
from pyinfra_roles.common import fact, hand_over, packages, put, this

from webtier import ROOT
from webtier.files import configs, postgresql
from webtier.files.facts import Facts


def superuser_sql(sql: str, port: int = 5432, database: str = "postgres") -> str:
    """A command running ``sql`` as PostgreSQL's superuser over the local socket (the
    database host's server, or the monitor's on its port and database)."""
    quoted = sql.replace("'", "'\\''")
    return (
        f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -p {port} -d {database} "
        f"-c '{quoted}'"
    )


def wait_for_server(port: int = 5432) -> str:
    """A command that waits for the local server to stay up (postgresql.wait_for_server):
    pg_auto_failover's unit is up before the server it starts."""
    return f"runuser -u postgres -- sh -c {shlex.quote(postgresql.wait_for_server(port))}"


def stored_verifiers(on=None, port: int = 5432) -> dict[str, str]:
    """Each role's verifier as the server of ``on`` (a pyinfra host; this one by
    default) on ``port`` stores it now (none before the server runs)."""
    stored = superuser_sql(
        "SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL", port
    )
    rows = (on or host).get_fact(Command, command=stored + " 2>/dev/null || true") or ""
    return dict(line.split("|", 1) for line in rows.strip().splitlines() if "|" in line)


#: A replicated set's verifiers, chosen once per run for all its hosts (pyinfra loads
#: them side by side, each in its own greenlet): a new standby, which stores nothing yet,
#: gets what the primary it is about to copy has, and PgBouncer's userlist.txt agrees
#: with the server it will follow.
_SET_CHOICE: dict[str, dict[str, str]] = {}


def verifiers() -> dict[str, str] | None:
    """The verifier each database user is to have (postgresql.kept_verifiers of what the
    server stores, as the role chooses), once per run before anything is rendered; None
    on a host without the role. A host of a replicated set takes its set's choice, made
    once from what every reachable host of the set stores (the same, by replication)."""
    if "postgresql" not in this.roles:
        return None
    users = this.v["postgresql_databases"] + postgresql.failover_users(this.v)
    group = this.v.get("postgresql_replication_group") or ""
    if not group:
        return postgresql.kept_verifiers(users, stored_verifiers())
    members = set(this.inventory.members.get(group, ()))
    stored: dict[str, str] = {}
    for other in state.inventory.get_active_hosts():  # each read yields to the others
        if other.data.get("webtier_host") in members:
            stored.update(stored_verifiers(other))
    # no yield from here to the return: the first host to get here chooses for the set
    if group not in _SET_CHOICE:
        _SET_CHOICE[group] = postgresql.kept_verifiers(users, stored)
    return _SET_CHOICE[group]


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    """As the postgresql role: the candidates checked first, a reload for what changed
    and a restart only for what PostgreSQL reports pending, each user's verifier and
    each database created or changed only when it differs, PgBouncer reloaded (restarted
    when its listeners changed). A host of a replicated set registers with the monitor
    once (pg_auto_failover), the set's first host first."""
    derived = postgresql.postgresql_derived(
        this.v,
        facts.release,
        facts.memtotal_mb,
        facts.ipv4,
        facts.postgresql_verifiers,
        this.inventory.members,
        this.inventory.all_host_vars(),
        facts.resolved,
    )
    plan = derived["__postgresql_failover"]
    set_hosts = this.inventory.members.get(this.v["postgresql_replication_group"], [])
    # pyinfra runs the operations of different hosts in the order of the lines they are
    # called from: a replicated set's first host's from the first line, the others' from
    # the second, so a new set's primary runs, with its users, before a standby copies it
    # (as the role's two includes of tasks/failover.yml). Two calls, not one: the line is
    # the point.
    if plan is None or this.name == set_hosts[0]:
        _deploy(mine, derived, facts)
    else:
        _deploy(mine, derived, facts)
    return None


def _register(version: str, plan: dict) -> list:
    """tasks/failover.yml: this host registered with the monitor once (pg_autoctl adopts
    a server the set's first host already holds, or copies the primary), pg_autoctl's
    settings, the role's settings included last. The operations after which the server
    is restarted: the include and the settings a restart applies."""
    pgdata, config = plan["pgdata"], plan["config"]

    def registered() -> bool:
        return fact(f"test -e {config} && echo yes || true") == "yes"

    first = this.name == this.inventory.members[this.v["postgresql_replication_group"]][0]
    if not first:
        server.shell(
            name="Refuse to replace a server this host already holds",
            commands=[
                "echo "
                + shlex.quote(
                    f"{this.name} holds a PostgreSQL server of its own ({pgdata}) and is not "
                    "registered with the monitor: as a standby it would be replaced by a copy "
                    "of the primary. Keep its data elsewhere if it matters, then remove the "
                    f"cluster (pg_dropcluster --stop {version} main) and run again"
                )
                + " >&2; exit 1"
            ],
            _if=lambda: (
                not registered()
                and fact(f"test -e {pgdata}/PG_VERSION && echo yes || true") == "yes"
            ),
        )
    monitor = plan["monitor"]
    uri = (
        f"postgres://{postgresql.KEEPER}@{monitor['name']}:{monitor['port']}"
        "/pg_auto_failover?sslmode=require"
    )
    if not first:
        # as the role: a standby registers only under a primary the monitor knows
        primaries = (
            f'runuser -u postgres -- psql -XAt {shlex.quote(uri)} -c "SELECT count(*) FROM '
            "pgautofailover.node WHERE reportedstate IN ('single', 'wait_primary', 'primary')\""
        )
        server.shell(
            name="Refuse to start a set from a host that is not its first",
            commands=[
                "echo "
                + shlex.quote(
                    "The monitor knows no primary of the set yet: its first host has not "
                    f"registered. Fix that host and run again; {this.name} then registers as "
                    "its standby"
                )
                + " >&2; exit 1"
            ],
            _if=lambda: not registered() and fact(f"{primaries} 2>/dev/null || true") == "0",
        )
    server.shell(
        name="Register this host with the monitor",
        commands=[
            f"runuser -u postgres -- pg_autoctl create postgres --pgdata {pgdata} "
            f"--pgctl /usr/lib/postgresql/{version}/bin/pg_ctl --pgport 5432 "
            f"--hostname {shlex.quote(this.name)} --name {shlex.quote(this.name)} "
            f"--ssl-self-signed --skip-pg-hba --monitor {shlex.quote(uri)}"
        ],
        _if=lambda: not registered(),
    )
    restart = autoctl_settings(pgdata, plan["pg_autoctl"])
    files.directory(
        name="The directory of the role's server settings",
        path=f"/etc/postgresql/{version}/main/conf.d",
        user="postgres",
        group="postgres",
        mode="0755",
    )
    include = files.line(
        name="Include the role's settings in the server's postgresql.conf",
        path=f"{pgdata}/postgresql.conf",
        line=f"include_if_exists = '/etc/postgresql/{version}/main/conf.d/webtier.conf'",
    )
    return [include, *restart]


def autoctl_settings(pgdata: str, settings: list[dict]) -> list:
    """pg_autoctl's derived settings (postgresql.pg_autoctl_settings) set where they
    differ, as tasks/failover.yml does: a reload follows those the keeper applies at a
    reload; the operations of those applied at a restart are returned (the caller
    restarts when one changed)."""
    restart = []
    for setting in settings:
        key, value = setting["key"], setting["value"]
        get = f"runuser -u postgres -- pg_autoctl config get --pgdata {pgdata} {key}"
        commands = [
            f"runuser -u postgres -- pg_autoctl config set --pgdata {pgdata} {key} "
            + shlex.quote(value)
        ]
        if setting["apply"] == "reload":
            commands.append("systemctl reload pgautofailover 2>/dev/null || true")
        op = server.shell(
            name=f"Set pg_autoctl's {key} (applied at a {setting['apply']})",
            commands=commands,
            _if=lambda get=get, value=value: fact(f"{get} 2>/dev/null || true") != value,
        )
        if setting["apply"] == "restart":
            restart.append(op)
    return restart


def _deploy(mine: list[configs.File], derived: dict, facts: Facts) -> None:  # noqa: PLR0915 (the role's one sequence)
    plan = derived["__postgresql_failover"]
    version = derived["__postgresql_version"]
    unit = "pgautofailover" if plan else f"postgresql@{version}-main"
    by_template = {f.template.rsplit("/", 1)[1]: f for f in mine}
    dropin = put(next(f for f in mine if "pgbouncer.service.d" in f.dest))
    server_dropin = put(next(f for f in mine if "postgresql@.service.d" in f.dest))
    # A replicated host: no "main" cluster from the packages, pg_auto_failover's unit.
    failover_units = (
        [
            put(next(f for f in mine if f.dest.startswith("/etc/postgresql-common/"))),
            put(next(f for f in mine if f.dest.endswith("/pgautofailover.service"))),
        ]
        if plan
        else []
    )
    systemd.daemon_reload(
        name="Reload systemd units",
        _if=lambda: (
            dropin.did_change()
            or server_dropin.did_change()
            or any(o.did_change() for o in failover_units)
        ),
    )
    extra = [f"postgresql-{version}-auto-failover", "pg-auto-failover-cli"] if plan else []
    packages("Install PostgreSQL and PgBouncer", [*this.v["__postgresql_packages"], *extra])
    # the include line of the role's settings, and pg_autoctl's settings a restart applies
    restart_for = []
    if plan:
        put(next(f for f in mine if f.dest == "/var/lib/postgresql/.pgpass"))
        restart_for = _register(version, plan)
    for name in ("webtier-postgresql-check", "webtier-pgbouncer-check"):
        files.put(
            name=f"Install {name}",
            src=str(ROOT / "roles/postgresql/files" / name),
            dest=f"/usr/local/sbin/{name}",
            mode="0755",
        )
    server_files = [
        put(
            next(f for f in mine if f.dest.endswith("/conf.d/webtier.conf")),
            f"/usr/local/sbin/webtier-postgresql-check {version} %s",
        ),
        put(by_template["pg_ident.conf.j2"]),
        put(by_template["pg_hba.conf.j2"]),
    ]
    started = systemd.service(
        name=f"Keep {unit} enabled and running", service=unit, running=True, enabled=True
    )
    # pg_auto_failover's unit is up before the server it starts: wait for the server.
    wait = wait_for_server() if plan else ":"
    ready = "runuser -u postgres -- pg_isready -q -h /var/run/postgresql"
    server.shell(
        name=f"Restart {unit} (its sandbox, unit or included settings changed)",
        commands=[f"systemctl restart {unit}", wait],
        _if=lambda: (
            not started.did_change()
            and (
                server_dropin.did_change()
                or any(o.did_change() for o in failover_units)
                or any(o.did_change() for o in restart_for)
            )
        ),
    )
    pending = superuser_sql("SELECT count(*) FROM pg_settings WHERE pending_restart")
    hba_errors = superuser_sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
    reload = superuser_sql("SELECT pg_reload_conf()") if plan else f"systemctl reload {unit}"
    server.shell(
        name=f"Reload {unit} (a restart only for what it reports pending)",
        commands=[
            wait,
            reload,
            f'test "$({hba_errors})" = 0 || {{ echo "pg_hba.conf has errors" >&2; exit 1; }}',
            f'test "$({pending})" = 0 || {{ systemctl restart {unit}; {wait}; }}',
        ],
        _if=lambda: not started.did_change() and any(o.did_change() for o in server_files),
    )
    server.shell(
        name="Wait for the server",
        commands=[wait],
        _if=lambda: bool(plan) and fact(f"{ready} && echo up || true") != "up",
    )

    def standby() -> bool:
        """Roles and databases are written on the primary only (a standby refuses writes)."""
        return fact(superuser_sql("SELECT pg_is_in_recovery()") + " 2>/dev/null || true") == "t"

    chosen = facts.postgresql_verifiers or {}
    failover_logins = [
        {"name": u["user"], "verifier": chosen[u["user"]]}
        for u in derived["__postgresql_failover_users"]
        if u["user"] in chosen
    ]
    for user in derived["__postgresql_users"] + failover_logins:
        name, verifier = user["name"], user["verifier"]

        def differs(name=name, verifier=verifier) -> bool:
            return stored_verifiers().get(name) != verifier and not standby()

        # The verifier reaches psql on its standard input from a file only root reads
        # (common.hand_over), which the command removes: never in an argv (psql -c would
        # show it in ps), and the session logs no statement, even a failed one.
        sql = hand_over(
            f"Hand {name}'s verifier to psql",
            "SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\n"
            f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') "
            f'THEN CREATE ROLE "{name}"; END IF; END$$;\n'
            f'ALTER ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
            f"PASSWORD '{verifier}';\n",
            "postgresql-user.sql",
            differs,
        )
        server.shell(
            name=f"User {name} with its password's verifier",
            commands=[
                f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 < {sql}; "
                f"status=$?; rm -f {sql}; exit $status"
            ],
            _if=differs,
        )
    if plan:
        # as the role: pg_rewind's functions granted to the replication user (no superuser)
        missing = superuser_sql(plan["rewind"]["missing"])
        server.shell(
            name="Grant the replication user what pg_rewind needs",
            commands=[superuser_sql(plan["rewind"]["grant"])],
            _if=lambda: not standby() and fact(f"{missing} 2>/dev/null || echo 0") != "0",
        )
    for database in this.v["postgresql_databases"]:
        name, owner = database["name"], database["user"]
        exists = superuser_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        server.shell(
            name=f"Database {name}, owned by {owner}",
            commands=[f"runuser -u postgres -- createdb -O {owner} {name}"],
            _if=lambda exists=exists: fact(f"{exists} || true") != "1" and not standby(),
        )
    userlist = put(by_template["userlist.txt.j2"])
    # The certificate and key before the settings, whose check loads them; new material
    # alone is checked by starting a PgBouncer on the live settings before the reload.
    tls = [f for f in mine if f.dest.startswith("/etc/pgbouncer/tls/")]
    if tls:
        files.directory(
            name="PgBouncer's TLS directory",
            path="/etc/pgbouncer/tls",
            user="postgres",
            group="postgres",
            mode="0750",
        )
    tls_ops = [put(f) for f in tls]
    ini = by_template["pgbouncer.ini.j2"]
    live_ini = fact("cat /etc/pgbouncer/pgbouncer.ini 2>/dev/null || true")
    listeners_change = postgresql.pgbouncer_listeners(live_ini) != postgresql.pgbouncer_listeners(
        ini.content
    )
    ini_op = put(ini, "/usr/local/sbin/webtier-pgbouncer-check %s")
    server.shell(
        name="Check PgBouncer on its new TLS material",
        commands=["/usr/local/sbin/webtier-pgbouncer-check /etc/pgbouncer/pgbouncer.ini"],
        _if=lambda: any(o.did_change() for o in tls_ops) and not ini_op.did_change(),
    )
    bouncer = systemd.service(
        name="Keep pgbouncer enabled and running", service="pgbouncer", running=True, enabled=True
    )
    server.shell(
        name="Restart pgbouncer (its descriptor limit or its listeners changed)",
        commands=["systemctl restart pgbouncer"],
        _if=lambda: (
            not bouncer.did_change()
            and (dropin.did_change() or (ini_op.did_change() and listeners_change))
        ),
    )
    server.shell(
        name="Reload pgbouncer",
        commands=["systemctl reload pgbouncer"],
        _if=lambda: (
            not bouncer.did_change()
            and not dropin.did_change()
            and not (ini_op.did_change() and listeners_change)
            and (
                ini_op.did_change() or userlist.did_change() or any(o.did_change() for o in tls_ops)
            )
        ),
    )
    if plan:
        # PgBouncer follows its server's role (roles/postgresql/files/webtier-pgbouncer-follow).
        follower = files.put(
            name="Install webtier-pgbouncer-follow",
            src=str(ROOT / "roles/postgresql/files/webtier-pgbouncer-follow"),
            dest="/usr/local/sbin/webtier-pgbouncer-follow",
            mode="0755",
        )
        follower_unit = put(
            next(f for f in mine if f.dest.endswith("webtier-pgbouncer-follow.service"))
        )
        systemd.daemon_reload(
            name="Reload systemd units (the follower's)", _if=follower_unit.did_change
        )
        following = systemd.service(
            name="Keep webtier-pgbouncer-follow enabled and running",
            service="webtier-pgbouncer-follow",
            running=True,
            enabled=True,
        )
        server.shell(
            name="Restart webtier-pgbouncer-follow (it or its unit changed)",
            commands=["systemctl restart webtier-pgbouncer-follow"],
            _if=lambda: (
                not following.did_change() and (follower.did_change() or follower_unit.did_change())
            ),
        )
