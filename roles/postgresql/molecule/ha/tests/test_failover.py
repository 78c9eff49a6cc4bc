"""The replicated set under pg_auto_failover (Debian 13: pgmon, pga, pgb): one primary
with a synchronous standby; the primary's host lost under writes through PgBouncer,
the standby takes over with every acknowledged write, the old primary rejoins as a
standby, and a converge afterwards changes nothing and keeps the new primary.
No timing is asserted here (the drill measures it); each wait is bounded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import molecule_hosts, playbook_runner

SCENARIO = Path(__file__).resolve().parents[1]
PGDATA = "/var/lib/postgresql/17/monitor"


def secret(name: str) -> str:
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / name).read_text().strip()


@pytest.fixture(scope="module")
def hosts():
    return molecule_hosts()


def states(monitor) -> dict[str, str]:
    rows = monitor.check_output(
        "runuser -u postgres -- psql -XAt -d pg_auto_failover "
        "-c 'SELECT nodename, reportedstate FROM pgautofailover.node'"
    )
    return dict(line.split("|") for line in rows.splitlines())


def wait_for(check, seconds: int = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    return check()


def settled(monitor) -> tuple[str, str] | None:
    """(primary, standby) once the set is back to one of each."""
    found = states(monitor)
    primaries = [h for h, s in found.items() if s == "primary"]
    standbys = [h for h, s in found.items() if s == "secondary"]
    return (primaries[0], standbys[0]) if len(primaries) == 1 and len(standbys) == 1 else None


def write(client, sql: str):
    dsn = (
        "host=pga,pgb port=6432 user=shop dbname=shop target_session_attrs=read-write "
        "connect_timeout=2"
    )
    return client.run(f"PGPASSWORD='{secret('shop')}' psql '{dsn}' -XAtqc \"{sql}\"")


def test_the_set_has_one_primary_and_a_synchronous_standby(hosts):
    primary, standby = wait_for(lambda: settled(hosts["pgmon"]))
    sync = hosts[primary].check_output(
        "runuser -u postgres -- psql -XAtc 'SELECT sync_state FROM pg_stat_replication'"
    )
    assert sync in ("sync", "quorum"), sync
    in_recovery = hosts[standby].check_output(
        "runuser -u postgres -- psql -XAtc 'SELECT pg_is_in_recovery()'"
    )
    assert in_recovery == "t"


def test_the_primary_lost_under_writes_loses_no_acknowledged_write(hosts):
    monitor = hosts["pgmon"]
    primary, standby = wait_for(lambda: settled(monitor))
    assert write(monitor, "CREATE TABLE IF NOT EXISTS marks (i int PRIMARY KEY)").rc == 0
    assert write(monitor, "TRUNCATE marks").rc == 0
    # a writer on the monitor's host: one INSERT every 0.1 s through both PgBouncers,
    # each acknowledged one's number kept
    monitor.check_output(
        "cat > /root/writer.sh <<'EOF'\n"
        f"export PGPASSWORD='{secret('shop')}'\n"
        "for i in $(seq 1 400); do\n"
        "  psql 'host=pga,pgb port=6432 user=shop dbname=shop target_session_attrs=read-write "
        'connect_timeout=2\' -XAtqc "INSERT INTO marks VALUES ($i)" >/dev/null 2>&1 && echo $i\n'
        "  sleep 0.1\n"
        "done > /root/acknowledged\n"
        "EOF"
    )
    monitor.check_output("rm -f /root/acknowledged; nohup bash /root/writer.sh >/dev/null 2>&1 &")
    time.sleep(5)
    subprocess.run(["docker", "kill", primary], check=True, capture_output=True)
    # writes succeed again through the other host's PgBouncer, with no person acting
    back = wait_for(lambda: write(monitor, "INSERT INTO marks VALUES (100000)").rc == 0, seconds=60)
    assert back, states(monitor)
    wait_for(lambda: monitor.run("pgrep -f /root/writer.sh").rc != 0, seconds=120)
    acknowledged = set(monitor.check_output("cat /root/acknowledged").split())
    present = set(
        hosts[standby]
        .check_output("runuser -u postgres -- psql -XAt -d shop -c 'SELECT i FROM marks'")
        .split()
    )
    assert acknowledged, "the writer wrote nothing"
    assert acknowledged - present == set()
    # the old primary, back, rejoins as the standby
    subprocess.run(["docker", "start", primary], check=True, capture_output=True)
    assert wait_for(lambda: settled(monitor) == (standby, primary), seconds=120), states(monitor)


def test_a_converge_after_the_failover_changes_nothing_and_keeps_the_new_primary(hosts):
    before = wait_for(lambda: settled(hosts["pgmon"]))
    rc, out = playbook_runner(SCENARIO, timeout=900)("converge.yml")
    assert rc == 0, out[-3000:]
    assert "changed=0" in out, out[-3000:]
    assert not re.search(r"changed=[1-9]", out), out[-3000:]
    assert settled(hosts["pgmon"]) == before
