"""postgresql as the role does it: the candidates checked, a reload and a restart only for
what PostgreSQL reports pending, users (their SCRAM verifiers) and databases changed
only when they differ, PgBouncer restarted only for new listeners."""

from __future__ import annotations

from pyinfra.operations import files, server, systemd
from pyinfra_roles.common import fact, hand_over, packages, put, this

from webtier import ROOT
from webtier.files import configs, postgresql
from webtier.files.facts import Facts


def superuser_sql(sql: str) -> str:
    """A command running ``sql`` as PostgreSQL's superuser over the local socket."""
    quoted = sql.replace("'", "'\\''")
    return f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c '{quoted}'"


def stored_verifiers() -> dict[str, str]:
    """Each role's verifier as the server stores it now (none before the server runs)."""
    rows = fact(
        superuser_sql("SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL")
        + " 2>/dev/null || true"
    )
    return dict(line.split("|", 1) for line in rows.splitlines() if "|" in line)


def verifiers() -> dict[str, str] | None:
    """The verifier each database user is to have (postgresql.kept_verifiers of what the
    server stores, as the role chooses), once per run before anything is rendered; None
    on a host without the role."""
    if "postgresql" not in this.roles:
        return None
    return postgresql.kept_verifiers(this.v["postgresql_databases"], stored_verifiers())


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    """As the postgresql role: the candidates checked first, a reload for what changed
    and a restart only for what PostgreSQL reports pending, each user's verifier and
    each database created or changed only when it differs, PgBouncer reloaded (restarted
    when its listeners changed)."""
    derived = postgresql.postgresql_derived(
        this.v, facts.release, facts.memtotal_mb, facts.ipv4, facts.postgresql_verifiers
    )
    version = derived["__postgresql_version"]
    unit = f"postgresql@{version}-main"
    by_template = {f.template.rsplit("/", 1)[1]: f for f in mine}
    dropin = put(next(f for f in mine if "pgbouncer.service.d" in f.dest))
    server_dropin = put(next(f for f in mine if "postgresql@.service.d" in f.dest))
    systemd.daemon_reload(
        name="Reload systemd units",
        _if=lambda: dropin.did_change() or server_dropin.did_change(),
    )
    packages("Install PostgreSQL and PgBouncer", this.v["__postgresql_packages"])
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
    server.shell(
        name=f"Restart {unit} (its sandbox changed)",
        commands=[f"systemctl restart {unit}"],
        _if=lambda: not started.did_change() and server_dropin.did_change(),
    )
    pending = superuser_sql("SELECT count(*) FROM pg_settings WHERE pending_restart")
    hba_errors = superuser_sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
    server.shell(
        name=f"Reload {unit} (a restart only for what it reports pending)",
        commands=[
            f"systemctl reload {unit}",
            f'test "$({hba_errors})" = 0 || {{ echo "pg_hba.conf has errors" >&2; exit 1; }}',
            f'test "$({pending})" = 0 || systemctl restart {unit}',
        ],
        _if=lambda: not started.did_change() and any(o.did_change() for o in server_files),
    )
    for user in derived["__postgresql_users"]:
        name, verifier = user["name"], user["verifier"]

        def differs(name=name, verifier=verifier) -> bool:
            return stored_verifiers().get(name) != verifier

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
    for database in this.v["postgresql_databases"]:
        name, owner = database["name"], database["user"]
        exists = superuser_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        server.shell(
            name=f"Database {name}, owned by {owner}",
            commands=[f"runuser -u postgres -- createdb -O {owner} {name}"],
            _if=lambda exists=exists: fact(f"{exists} || true") != "1",
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
