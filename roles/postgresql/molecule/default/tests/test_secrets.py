"""No password or verifier of a database user in any output or log, at -vvv, when the
task that sets it fails: the server refuses the new password (its maintenance database
made read-only for the run), and neither Ansible's output nor the host's journal, the
server's log nor its temporary files hold the new password or its verifier."""

from __future__ import annotations

import json
import secrets
import time

from conftest import DATABASE, VARS, VERSIONS, superuser

from webtier.files.postgresql import scram_verifier

READ_ONLY = "ALTER DATABASE postgres SET default_transaction_read_only = on"
# From another database: the maintenance one refuses any change while read-only.
WRITABLE = (
    "runuser -u postgres -- psql -XAtq -d template1 -c "
    "'ALTER DATABASE postgres RESET default_transaction_read_only'"
)
HUNTED = "/tmp /var/tmp /run /var/log /root"


def test_a_failing_password_change_at_vvv_shows_no_password_or_verifier(run, instances):
    new = "rotated-" + secrets.token_hex(12)
    wanted = {"password": new, "verifier": scram_verifier(DATABASE["user"], new)}
    databases = [{**d, "password": new} for d in VARS["postgresql_databases"]]
    since = int(time.time()) - 1
    for name in VERSIONS:
        superuser(instances[name], READ_ONLY)
    try:
        rc, out = run(
            "postgresql_only.yml", "-vvv", "-e", json.dumps({"postgresql_databases": databases})
        )
    finally:
        for name in VERSIONS:
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
