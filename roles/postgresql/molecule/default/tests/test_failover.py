"""The replicated set under pg_auto_failover (Debian 13: pga and pgb, watched by pgmon):
one primary with a synchronous standby; the primary's host lost under writes through
PgBouncer, the standby takes over with every acknowledged write, the old primary
rejoins as the standby, and a converge afterwards changes nothing and keeps the new
primary. No timing is asserted here (`make drills DRILL=db-failover` measures it);
each wait is bounded. The other tests ask which host is the primary when they write."""

from __future__ import annotations

import re
import subprocess

from conftest import DATABASE, MONITOR, SET, password, superuser, wait_for

#: How the apps reach the set (the multi-host DATABASE_URL the python_app role writes).
SET_DSN = (
    f"host={','.join(SET)} port=6432 user={DATABASE['user']} dbname={DATABASE['name']} "
    "target_session_attrs=read-write connect_timeout=2"
)


def states(monitor) -> dict[str, str]:
    rows = superuser(
        monitor, "SELECT nodename, reportedstate FROM pgautofailover.node", "pg_auto_failover"
    )
    return dict(line.split("|") for line in rows.splitlines())


def settled(monitor) -> tuple[str, str] | None:
    """(primary, standby) once the set is back to one of each."""
    found = states(monitor)
    primaries = [h for h, s in found.items() if s == "primary"]
    standbys = [h for h, s in found.items() if s == "secondary"]
    return (primaries[0], standbys[0]) if len(primaries) == 1 and len(standbys) == 1 else None


def write(client, sql: str):
    return client.run(f"PGPASSWORD='{password()}' psql '{SET_DSN}' -XAtqc \"{sql}\"")


def test_the_monitor_reaches_the_set_and_no_client_tier_reaches_its_servers(instances):
    """Port 5432 of a set host: open to its peer and the monitor (replication, health
    checks), dropped for db12, a client tier host, which has PgBouncer's port only."""
    probe = "timeout 3 bash -c '</dev/tcp/{}/{}'"
    for name in SET:
        peer = next(other for other in SET if other != name)
        assert instances[peer].run(probe.format(name, 5432)).rc == 0, (peer, name)
        assert instances[MONITOR].run(probe.format(name, 5432)).rc == 0, name
        assert instances["db12"].run(probe.format(name, 5432)).rc != 0, name
        assert instances["db12"].run(probe.format(name, 6432)).rc == 0, name


def test_the_set_has_one_primary_and_a_synchronous_standby(instances):
    primary, standby = wait_for(lambda: settled(instances[MONITOR]))
    sync = superuser(instances[primary], "SELECT sync_state FROM pg_stat_replication")
    assert sync in ("sync", "quorum"), sync
    assert superuser(instances[standby], "SELECT pg_is_in_recovery()") == "t"


def test_the_primary_lost_under_writes_loses_no_acknowledged_write(instances):
    monitor, client = instances[MONITOR], instances["db12"]
    primary, standby = wait_for(lambda: settled(monitor))
    assert write(client, "CREATE TABLE IF NOT EXISTS marks (i int PRIMARY KEY)").rc == 0
    assert write(client, "TRUNCATE marks").rc == 0
    # A writer on a client tier host: one INSERT every 0.1 s through both PgBouncers,
    # each acknowledged one's number kept, until told to stop (at most 600).
    client.check_output(
        "cat > /root/writer.sh <<'EOF'\n"
        f"export PGPASSWORD='{password()}'\n"
        "for i in $(seq 1 600); do\n"
        "  [ -e /root/writer.stop ] && break\n"
        f"  psql '{SET_DSN}' -XAtqc \"INSERT INTO marks VALUES ($i)\" >/dev/null 2>&1 && echo $i\n"
        "  sleep 0.1\n"
        "done > /root/acknowledged\n"
        "EOF"
    )
    client.check_output(
        "rm -f /root/acknowledged /root/writer.stop; nohup bash /root/writer.sh >/dev/null 2>&1 &"
    )
    client.run("sleep 5")
    subprocess.run(["docker", "kill", primary], check=True, capture_output=True)
    # Writes succeed again through the other host's PgBouncer, with no person acting.
    back = wait_for(lambda: write(client, "INSERT INTO marks VALUES (100000)").rc == 0, 60)
    assert back, states(monitor)
    client.run("sleep 3; touch /root/writer.stop")
    assert wait_for(lambda: client.run("pgrep -f '^bash /root/writer.sh'").rc != 0, seconds=30)
    acknowledged = set(client.check_output("cat /root/acknowledged").split())
    present = set(superuser(instances[standby], "SELECT i FROM marks", DATABASE["name"]).split())
    assert acknowledged, "the writer wrote nothing"
    assert acknowledged - present == set()
    # The old primary, back, rejoins as the standby, by pg_rewind (the replication user
    # holds its rights) rather than a copy of the whole primary.
    subprocess.run(["docker", "start", primary], check=True, capture_output=True)
    assert wait_for(lambda: settled(monitor) == (standby, primary), 120), states(monitor)
    rejoin = instances[primary].check_output("journalctl -u pgautofailover --no-pager -o cat")
    assert "permission denied" not in rejoin, rejoin[-3000:]
    assert "pg_rewind: Done!" in rejoin or "no rewind required" in rejoin, rejoin[-3000:]


def test_a_converge_after_the_failover_changes_nothing_and_keeps_the_new_primary(instances, run):
    before = wait_for(lambda: settled(instances[MONITOR]))
    rc, out = run("converge.yml")
    assert rc == 0, out[-3000:]
    # Every host's recap says changed=0: the scenario's idempotence check (molecule.yml).
    recap = dict(re.findall(r"(\S+) : ok=\d+ changed=(\d+)", out))  # out is one line
    # (localhost's certificates play aside)
    assert {n: recap.get(n) for n in instances} == dict.fromkeys(instances, "0"), out[-3000:]
    assert settled(instances[MONITOR]) == before
