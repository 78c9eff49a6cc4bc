"""Helpers shared by the postgresql scenario's testinfra tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import molecule_hosts, playbook_runner

SCENARIO = Path(__file__).resolve().parents[1]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
#: PostgreSQL's major version by instance (Debian 13: 17, Debian 12: 15).
VERSIONS = {"db13": 17, "db12": 15}
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


def superuser(host, sql: str) -> str:
    """``sql`` on the database host itself, as the superuser (over the local socket)."""
    return host.check_output(f'runuser -u postgres -- psql -XAtc "{sql}"')


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
