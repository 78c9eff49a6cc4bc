"""Helpers shared by the postgresql scenario's testinfra tests."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import molecule_hosts, playbook_runner

SCENARIO = Path(__file__).resolve().parents[1]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
#: PostgreSQL's major version by database host (Debian 13: 17, Debian 12: 15).
VERSIONS = {"pga": 17, "pgb": 17, "db12": 15}
#: The replicated set (pg_auto_failover; either may be the primary) and its monitor.
SET = ("pga", "pgb")
MONITOR = "pgmon"
DATABASE = VARS["postgresql_databases"][0]


def password() -> str:
    return (
        (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / "shop").read_text().strip()
    )


#: Where the tests put the scenario's CA on each host (the clients verify PgBouncer).
CA = "/root/webtier-test-ca.crt"


def psql(  # noqa: PLR0913 (the connection's parts, each one)
    host,
    server: str,
    sql: str,
    *,
    secret: str | None = None,
    timeout: int = 5,
    sslmode: str = "verify-full",
):
    """``sql`` through ``server``'s PgBouncer from ``host``, as the app's user, over TLS
    with the server's certificate and name verified, as the apps connect."""
    dsn = (
        f"host={server} port={VARS.get('postgresql_pgbouncer_port', 6432)} "
        f"user={DATABASE['user']} dbname={DATABASE['name']} connect_timeout={timeout} "
        f"sslmode={sslmode} sslrootcert={CA}"
    )
    return host.run(
        f"PGPASSWORD='{secret or password()}' timeout {timeout + 2} psql '{dsn}' -XAtc \"{sql}\""
    )


def superuser(host, sql: str, database: str = "postgres") -> str:
    """``sql`` on the database host itself, as the superuser (over the local socket)."""
    return host.check_output(f'runuser -u postgres -- psql -XAt -d {database} -c "{sql}"')


def wait_for(check, seconds: int = 90):
    """check's first true answer within ``seconds`` (polled each second), else its last."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    return check()


def writable(instances) -> list[str]:
    """The database hosts whose server takes writes now: db12 and the set's primary."""
    return [
        name
        for name in sorted(VERSIONS)
        if superuser(instances[name], "SELECT pg_is_in_recovery()") == "f"
    ]


def server_unit(name: str) -> str:
    """The unit that runs the host's server: pg_auto_failover's keeper in the set."""
    return "pgautofailover" if name in SET else f"postgresql@{VERSIONS[name]}-main"


@pytest.fixture(scope="session")
def instances() -> dict:
    hosts = molecule_hosts()
    pem = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki" / "ca.crt").read_text()
    for host in hosts.values():
        host.check_output(f"cat > {CA} <<'EOF'\n{pem.strip()}\nEOF")
    return hosts


@pytest.fixture(scope="session")
def client(instances):
    """db12, a host of the worker tier too: a client tier of both database hosts (of its
    own PgBouncer over loopback, which the firewall always admits)."""
    return instances["db12"]


@pytest.fixture(scope="session")
def run():
    return playbook_runner(SCENARIO, timeout=600)
