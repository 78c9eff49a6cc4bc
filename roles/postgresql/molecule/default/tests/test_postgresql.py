"""The database tier as the app tier sees it: in through PgBouncer with SCRAM, from the
client tier only, never more server connections than the pool, no password on disk."""

from __future__ import annotations

import pytest
from conftest import CA, DATABASE, SET, VARS, VERSIONS, password, psql, server_unit, superuser

pytestmark = pytest.mark.parametrize("server", sorted(VERSIONS))


def test_the_app_user_logs_in_through_pgbouncer(client, server):
    result = psql(
        client,
        server,
        "SELECT current_user, inet_server_addr(), current_setting('server_version_num')",
    )
    assert result.rc == 0, result.stderr
    user, address, version = result.stdout.strip().split("|")
    assert user == DATABASE["user"]
    # PgBouncer, on the database host, is the server's client: over loopback.
    assert address == "127.0.0.1"
    assert int(version) // 10000 == VERSIONS[server]


def test_a_wrong_password_is_refused(client, server):
    result = psql(client, server, "SELECT 1", secret="not-the-password")
    assert result.rc != 0
    assert "authentication failed" in result.stderr


def test_only_pgbouncer_is_reachable_and_postgres_listens_on_loopback(instances, server):
    """PostgreSQL on loopback; in the replicated set also on the host's own address,
    which its firewall opens to the set and the monitor only (test_failover.py)."""
    host = instances[server]
    listening = host.check_output("ss -ltnH")
    own = host.check_output("ip -4 -o route get 192.0.2.1").split(" src ")[1].split()[0]
    postgres = [
        line.split()[3] for line in listening.splitlines() if line.split()[3].endswith(":5432")
    ]
    assert postgres
    private = [a for a in postgres if not a.startswith(("127.0.0.1:", "[::1]:"))]
    assert private == ([f"{own}:5432"] if server in SET else []), postgres
    bouncer = [line.split() for line in listening.splitlines() if line.split()[3].endswith(":6432")]
    # Loopback and the host's own address, where its clients reach it: not every
    # interface (postgresql_pgbouncer_listen: [127.0.0.1, private]).
    assert sorted(b[3] for b in bouncer) == sorted(["127.0.0.1:6432", f"{own}:6432"])
    assert int(bouncer[0][2]) == VARS.get("postgresql_pgbouncer_listen_backlog", 1024)


def test_no_password_is_on_the_host(instances, server):
    host = instances[server]
    secret = password()
    found = host.run(f"grep -rlF '{secret}' /etc/pgbouncer /etc/postgresql /etc/webtier")
    assert found.stdout == "", found.stdout
    assert found.rc == 1
    stored = superuser(
        host, f"SELECT rolpassword FROM pg_authid WHERE rolname = '{DATABASE['user']}'"
    )
    assert stored.startswith("SCRAM-SHA-256$")
    assert stored in host.file("/etc/pgbouncer/userlist.txt").content_string


def test_the_server_connections_never_exceed_the_pool(client, instances, server):
    """40 clients at once, each holding a transaction for a second: PgBouncer queues what
    its pool (10) and reserve (2) cannot serve; every client is answered."""
    pool = (
        VARS["postgresql_pgbouncer_default_pool_size"]
        + VARS["postgresql_pgbouncer_reserve_pool_size"]
    )
    host = instances[server]
    dsn = (
        f"host={server} port=6432 user={DATABASE['user']} dbname={DATABASE['name']} "
        f"sslmode=verify-full sslrootcert={CA}"
    )
    client.check_output(
        "rm -f /tmp/pool-*.out; for i in $(seq 40); do "
        f"(PGPASSWORD='{password()}' psql '{dsn}' -XAtc 'SELECT pg_sleep(1), 1' "
        ">/tmp/pool-$i.out 2>&1 &) ; done"
    )
    seen = 0
    for _ in range(20):
        count = int(
            superuser(
                host, f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{DATABASE['user']}'"
            )
        )
        seen = max(seen, count)
        if client.run("pgrep -c psql").stdout.strip() in ("", "0"):
            break
        host.run("sleep 0.25")
    client.check_output("while pgrep psql >/dev/null; do sleep 0.2; done")
    answered = client.check_output("cat /tmp/pool-*.out | grep -c '^|1$' || true")
    assert int(answered) == 40, client.check_output("cat /tmp/pool-*.out | sort | uniq -c")
    assert 0 < seen <= pool, f"{seen} server connections for a pool of {pool}"


#: The memory limit molecule.yml gives each container (MiB).
GRANTED_MB = {"pga": 1024, "pgb": 1024, "db12": 2048}


def test_memory_follows_what_the_host_grants_when_the_inventory_gives_none(instances, server):
    """No webtier_memory_mb: auto is a quarter (shared_buffers) and three quarters
    (effective_cache_size) of the container's memory limit, not of the machine's RAM
    that /proc/meminfo shows."""
    host, granted_mb = instances[server], GRANTED_MB[server]
    assert superuser(host, "SHOW shared_buffers") == f"{granted_mb // 4}MB"
    assert superuser(host, "SHOW effective_cache_size") == f"{granted_mb * 3 // 4}MB"


def test_both_services_run_sandboxed(instances, server):
    """PostgreSQL (under pg_auto_failover's keeper in the set) and PgBouncer run under
    the database tier's sandbox (no capability, the system read-only but their own
    directories, no new privileges): systemd's own exposure score for each, at most
    nginx's 2.5, and both still serve."""
    host = instances[server]
    units = (f"{server_unit(server)}.service", "pgbouncer.service")
    for unit in units:
        shown = host.check_output(
            f"systemctl show -p ProtectSystem -p NoNewPrivileges -p CapabilityBoundingSet {unit}"
        )
        assert "ProtectSystem=strict" in shown, shown
        assert "NoNewPrivileges=yes" in shown, shown
        assert "CapabilityBoundingSet=\n" in shown + "\n", shown
        assert host.service(unit.removesuffix(".service")).is_running
        score = host.check_output(f"systemd-analyze security --no-pager {unit} | tail -n 1")
        print(f"{server}: {unit}: {score}")
        exposure = float(score.split("exposure level for")[1].split(":")[1].split()[0])
        assert exposure <= 2.5, score
    assert superuser(host, "SELECT 1") == "1"
