"""postgresql_monitor as the role does it: pg_auto_failover's monitor created once, its
settings checked (postgres -C) before they go live and reloaded (restarted only for what
the server reports pending), the keepers' verifier kept while the password matches."""

from __future__ import annotations

import shlex

from pyinfra.operations import files, server, systemd
from pyinfra_roles.common import fact, hand_over, packages, put, this
from pyinfra_roles.postgresql import (
    autoctl_settings,
    stored_verifiers,
    superuser_sql,
    wait_for_server,
)

from webtier import ROOT
from webtier.files import configs, postgresql
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    derived = postgresql.monitor_derived(
        this.name, this.v, facts.release, this.inventory.members, facts.resolved, facts.ipv4
    )
    version = derived["__postgresql_monitor_version"]
    port = int(this.v["postgresql_monitor_port"])
    pgdata = derived["__pg_autoctl_pgdata"]
    by_dest = {f.dest: f for f in mine}
    conf_dir = f"/etc/postgresql/{version}/monitor"
    for path in ("/etc/postgresql-common/createcluster.d", conf_dir):
        files.directory(
            name=f"The directory {path}", path=path, user="root", group="root", mode="0755"
        )
    # Before the packages: Debian's would otherwise make a "main" cluster nobody uses.
    unit_ops = [
        put(by_dest["/etc/postgresql-common/createcluster.d/webtier.conf"]),
        put(by_dest["/etc/systemd/system/pgautofailover.service"]),
    ]
    packages(
        "Install PostgreSQL and pg_auto_failover",
        [
            "postgresql",
            f"postgresql-{version}-auto-failover",
            "pg-auto-failover-cli",
            "python3-psycopg2",
        ],
    )
    files.put(
        name="Install webtier-postgresql-check",
        src=str(ROOT / "roles/postgresql/files/webtier-postgresql-check"),
        dest="/usr/local/sbin/webtier-postgresql-check",
        mode="0755",
    )
    server.shell(
        name="Create the monitor",
        commands=[
            f"test -e {pgdata}/PG_VERSION || runuser -u postgres -- pg_autoctl create monitor "
            f"--pgdata {pgdata} --pgctl /usr/lib/postgresql/{version}/bin/pg_ctl "
            f"--pgport {port} --hostname {shlex.quote(this.name)} --ssl-self-signed --skip-pg-hba"
        ],
        _if=lambda: fact(f"test -e {pgdata}/PG_VERSION && echo yes || true") != "yes",
    )
    restart_for = autoctl_settings(pgdata, derived["__postgresql_monitor_pg_autoctl"])
    include = files.line(
        name="Include the role's settings in the monitor's postgresql.conf",
        path=f"{pgdata}/postgresql.conf",
        line=f"include_if_exists = '{conf_dir}/webtier.conf'",
    )
    settings = put(
        by_dest[f"{conf_dir}/webtier.conf"],
        f"/usr/local/sbin/webtier-postgresql-check {version} %s monitor",
    )
    rules = [put(by_dest[f"{conf_dir}/{name}"]) for name in ("pg_hba.conf", "pg_ident.conf")]
    pgpass = put(by_dest["/var/lib/postgresql/.pgpass"])
    systemd.daemon_reload(
        name="Reload systemd units", _if=lambda: any(o.did_change() for o in unit_ops)
    )
    started = systemd.service(
        name="Keep pgautofailover enabled and running",
        service="pgautofailover",
        running=True,
        enabled=True,
    )
    wait = wait_for_server(port)
    server.shell(
        name="Restart the monitor (its unit or its include changed)",
        commands=["systemctl restart pgautofailover", wait],
        _if=lambda: (
            not started.did_change()
            and any(o.did_change() for o in [*unit_ops, include, *restart_for])
        ),
    )
    pending = superuser_sql("SELECT count(*) FROM pg_settings WHERE pending_restart", port)
    server.shell(
        name="Reload the monitor (a restart only for what it reports pending)",
        commands=[
            wait,
            superuser_sql("SELECT pg_reload_conf()", port),
            f'test "$({pending})" = 0 || {{ systemctl restart pgautofailover; {wait}; }}',
        ],
        _if=lambda: any(o.did_change() for o in [settings, *rules, pgpass]),
    )
    chosen = postgresql.kept_verifiers(
        derived["__postgresql_monitor_users"], stored_verifiers(port=port)
    )
    verifier = chosen[postgresql.KEEPER]

    def differs() -> bool:
        return stored_verifiers(port=port).get(postgresql.KEEPER) != verifier

    sql = hand_over(
        "Hand the keepers' verifier to psql",
        "SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\n"
        f"ALTER ROLE {postgresql.KEEPER} PASSWORD '{verifier}';\n",
        "postgresql-monitor-user.sql",
        differs,
    )
    server.shell(
        name="The keepers' password (its SCRAM verifier)",
        commands=[
            f"{wait}; runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -p {port} "
            f"-d pg_auto_failover < {sql}; status=$?; rm -f {sql}; exit $status"
        ],
        _if=differs,
    )
    return app
