"""No password or verifier of a database user in any output or log, at -vvv, when the
task that sets it fails: the server refuses the new password (its maintenance database
made read-only for the run), and neither Ansible's output nor the host's journal, the
server's log nor its temporary files hold the new password or any verifier (the new one
has a random salt: the hunt looks for every SCRAM verifier, by its form)."""

from __future__ import annotations

import json
import secrets
import time

from conftest import SET, VARS, VERSIONS, password, psql, superuser, wait_for, writable

READ_ONLY = "ALTER DATABASE postgres SET default_transaction_read_only = on"
# From another database: the maintenance one refuses any change while read-only.
WRITABLE = (
    "runuser -u postgres -- psql -XAtq -d template1 -c "
    "'ALTER DATABASE postgres RESET default_transaction_read_only'"
)
HUNTED = "/tmp /var/tmp /run /var/log /root"


def test_a_failing_password_change_at_vvv_shows_no_password_or_verifier(run, instances):
    new = "rotated-" + secrets.token_hex(12)
    wanted = {"password": new, "verifier": "SCRAM-SHA-256$"}
    databases = [{**d, "password": new} for d in VARS["postgresql_databases"]]
    since = int(time.time()) - 1
    servers = writable(instances)  # db12 and the set's primary (a standby replicates)
    for name in servers:
        superuser(instances[name], READ_ONLY)
    try:
        rc, out = run(
            "postgresql_only.yml", "-vvv", "-e", json.dumps({"postgresql_databases": databases})
        )
    finally:
        for name in servers:
            instances[name].check_output(WRITABLE)
    assert rc != 0, out[-3000:]
    assert "Create the databases' users" in out, out[-3000:]
    assert [k for k, v in wanted.items() if v in out] == []
    for name in VERSIONS:
        host = instances[name]
        journal = host.check_output(f"journalctl --no-pager -o cat --since @{since}")
        files = host.run(
            f"grep -rlsF -e {wanted['password']} -e '{wanted['verifier']}' {HUNTED}"
        ).stdout.split()
        assert [k for k, v in wanted.items() if v in journal] == [], name
        assert files == [], (name, files)


def test_a_verifier_the_server_made_for_the_same_password_is_kept(run, instances, client):
    """The salt is random and never derived from the password: a verifier PostgreSQL
    made itself for the same password (with its own random salt) is kept by the next
    converge, which sets no password and hands PgBouncer that same verifier."""
    user = VARS["postgresql_databases"][0]["user"]
    stored = f"SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"
    made = {}
    for name in writable(instances):  # the set's standby has its primary's, replicated
        host = instances[name]
        before = superuser(host, stored).strip()
        # On stdin (echo is the shell's own), in a session that logs no statement.
        host.check_output(
            f"echo \"SET log_statement = 'none'; ALTER ROLE {user} PASSWORD '{password()}'\""
            " | runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1"
        )
        made[name] = superuser(host, stored).strip()
        assert made[name] != before  # the server's own salt
    primary = next(name for name in made if name in SET)
    for name in SET:
        made[name] = made[primary]
        assert wait_for(lambda n=name: superuser(instances[n], stored).strip() == made[n]), name
    rc, out = run("postgresql_only.yml")
    assert rc == 0, out[-3000:]
    for name in VERSIONS:
        host = instances[name]
        assert superuser(host, stored).strip() == made[name], name
        assert f'"{user}" "{made[name]}"' in host.file("/etc/pgbouncer/userlist.txt").content_string
        assert psql(client, name, "SELECT current_user").stdout.strip() == user
