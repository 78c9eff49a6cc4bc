"""TLS between the apps and PgBouncer (postgresql_pgbouncer_tls, on in this scenario):
PgBouncer refuses a client that does not speak it, and a client that verifies the
certificate reaches it by the host's name only (the name its certificate holds)."""

from __future__ import annotations

import pytest
from conftest import DATABASE, VERSIONS, psql

pytestmark = pytest.mark.parametrize("server", sorted(VERSIONS))


def test_a_client_without_tls_is_refused(client, server):
    result = psql(client, server, "SELECT 1", sslmode="disable")
    assert result.rc != 0
    assert "SSL required" in result.stderr, result.stderr


def test_a_verifying_client_logs_in_over_tls(client, server):
    result = psql(client, server, "SELECT current_user")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == DATABASE["user"]


def test_the_certificate_is_checked_against_the_name_the_client_uses(client, server):
    """By its address, not its name: verify-full refuses (the certificate names the host),
    so the clients do check the certificate, not only encrypt."""
    address = client.check_output(f"getent ahostsv4 {server} | head -1 | cut -d' ' -f1")
    result = psql(client, address, "SELECT 1")
    assert result.rc != 0
    assert "does not match host name" in result.stderr, result.stderr
