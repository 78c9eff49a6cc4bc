"""The tiers PgBouncer admits, and changes of the role's settings: refused before any
change when the layers disagree, and a setting PostgreSQL refuses never goes live."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import DATABASE, VERSIONS, psql, server_unit

sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import assert_refused_before_any_change


def test_the_wrong_tier_is_refused(instances):
    """pga is in no client tier (postgresql_client_groups): db12's firewall drops it,
    while db12 (the worker tier) reaches pga. Over loopback each reaches its own."""
    result = psql(instances["pga"], "db12", "SELECT current_user", timeout=3)
    assert result.rc != 0
    assert DATABASE["user"] not in result.stdout
    assert psql(instances["db12"], "pga", "SELECT current_user").stdout.strip() == "shop"


def fingerprint(instances) -> dict:
    """Per database host: the live files' checksums and the PIDs of the server, of the
    unit that runs it (pg_auto_failover's keeper in the set) and of PgBouncer."""
    found = {}
    for name, version in VERSIONS.items():
        host = instances[name]
        found[name] = (
            host.check_output(
                f"sha256sum /etc/postgresql/{version}/main/conf.d/webtier.conf "
                "/etc/pgbouncer/pgbouncer.ini"
            ),
            host.check_output(f"head -n 1 /var/lib/postgresql/{version}/main/postmaster.pid"),
            host.check_output(f"systemctl show -p MainPID --value {server_unit(name)}"),
            host.check_output("systemctl show -p MainPID --value pgbouncer"),
        )
    return found


def test_pools_larger_than_max_connections_are_refused_before_any_change(run, instances):
    assert_refused_before_any_change(
        run,
        "postgresql_only.yml",
        {"postgresql_max_connections": 15},
        "postgresql_pgbouncer_default_pool_size",
        lambda: fingerprint(instances),
    )


def test_a_setting_postgresql_refuses_never_goes_live(run, instances, client):
    before = fingerprint(instances)
    rc, out = run(
        "postgresql_only.yml", "-e", json.dumps({"postgresql_extra_config": {"wal_level": "loud"}})
    )
    assert rc != 0
    assert 'invalid value for parameter "wal_level"' in out, out[-3000:]
    assert fingerprint(instances) == before
    for server in VERSIONS:
        assert psql(client, server, "SELECT 1").stdout.strip() == "1"
