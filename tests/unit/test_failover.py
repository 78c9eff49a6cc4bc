"""A replicated database set under pg_auto_failover (issue 36): the timing rule that
fences an old primary, each host's part in its set, the files both engines write from it,
and what the model refuses."""

from __future__ import annotations

import pytest

from webtier.checks import invariants
from webtier.files import firewall, postgresql
from webtier.files.render import render
from webtier.model import derive, schema
from webtier.model.inventory import role_defaults

GROUPS = {"databases": ["db1", "db2"], "dbset": ["db1", "db2"], "database_monitors": ["mon1"]}
KEEPERS = "keepers' secret"  # pragma: allowlist secret (a test's own)
STANDBYS = "standby:secret\\"  # pragma: allowlist secret (a colon and a backslash)
RESOLVED = {"db1": ["10.0.0.1"], "db2": ["10.0.0.2"], "mon1": ["10.0.0.9"]}


def node(host="db1", **over):
    return {
        **role_defaults("postgresql"),
        "inventory_hostname": host,
        "__postgresql_versions": {"trixie": 17},
        "postgresql_databases": [{"name": "shop", "user": "shop", "password": "x"}],
        "postgresql_replication_group": "dbset",
        "postgresql_replication_password": STANDBYS,
        **over,
    }


HOSTVARS = {"mon1": {"postgresql_monitor_password": KEEPERS}, "db1": {}, "db2": {}}


@pytest.mark.parametrize("period", [1, 2, 5])
@pytest.mark.parametrize("demote", [4, 6, 30])
def test_a_cut_off_primary_stops_before_the_monitor_promotes_another(period, demote):
    timing = derive.failover_timeouts(period, 2 * period, demote)
    assert timing["network_partition_timeout"] * 1000 < timing["primary_demote_timeout"]
    assert timing["node_considered_unhealthy_timeout"] == 2 * period * 1000
    assert timing["health_check_period"] == period * 1000


def test_a_host_without_a_set_has_no_failover_part():
    assert postgresql.failover("db1", node(postgresql_replication_group=""), GROUPS, {}) is None
    assert postgresql.failover_names("db1", node(postgresql_replication_group=""), GROUPS) == []


def test_a_host_of_a_set_names_its_peers_and_the_monitor_by_address():
    plan = postgresql.failover("db1", node(), GROUPS, HOSTVARS, RESOLVED)
    assert plan["peers"] == [{"name": "db2", "addresses": ["10.0.0.2"]}]
    assert plan["monitor"]["name"] == "mon1"
    assert plan["monitor"]["addresses"] == ["10.0.0.9"]
    assert plan["network_partition_timeout"] == 4  # the monitor's defaults: 1/3/6 s
    assert postgresql.failover_names("db1", node(), GROUPS) == ["db2", "mon1"]


def test_a_set_without_its_monitor_or_its_password_is_refused():
    with pytest.raises(ValueError, match="no such group"):
        postgresql.failover("db1", node(), {"dbset": ["db1", "db2"]}, HOSTVARS)
    with pytest.raises(ValueError, match="postgresql_monitor_password of mon1 is empty"):
        postgresql.failover("db1", node(), GROUPS, {"mon1": {}})


def test_a_peer_the_host_cannot_resolve_is_refused_not_left_out():
    with pytest.raises(ValueError, match="db2 cannot be resolved"):
        postgresql.failover("db1", node(), GROUPS, HOSTVARS, {"mon1": ["10.0.0.9"]})


def derived(host="db1", **over):
    return postgresql.postgresql_derived(
        node(host, **over), "trixie", 4096, "10.0.0.1", None, GROUPS, HOSTVARS, RESOLVED
    )


def test_the_access_rules_admit_the_peers_for_replication_and_the_monitor_for_its_check():
    values = {**node(), **derived()}
    hba = render("etc/postgresql/pg_hba.conf.j2", values)
    rules = [line.split("#")[0].split() for line in hba.splitlines() if line[:1] not in "#"]
    rules = [r for r in rules if r]
    assert [
        "hostssl",
        "replication",
        "pgautofailover_replicator",
        "10.0.0.2/32",
        "scram-sha-256",
    ] in rules
    assert ["hostssl", "postgres", "pgautofailover_monitor", "10.0.0.9/32", "trust"] in rules
    # nobody else is trusted, and the set's own host is not admitted as a peer
    assert [r for r in rules if r[-1] == "trust"] == [
        ["hostssl", "postgres", "pgautofailover_monitor", "10.0.0.9/32", "trust"]
    ]
    assert not [r for r in rules if "10.0.0.1/32" in r]


def test_a_single_server_keeps_listening_on_loopback_only():
    single = {**node(postgresql_replication_group=""), **derived(postgresql_replication_group="")}
    conf = render("etc/postgresql/webtier.conf.j2", single)
    assert "listen_addresses = 'localhost'" in conf
    assert "hba_file" not in conf
    replicated = render("etc/postgresql/webtier.conf.j2", {**node(), **derived()})
    assert "listen_addresses = 'localhost,10.0.0.1'" in replicated


def test_the_passwords_file_escapes_what_libpq_would_split_on():
    text = render("var/lib/postgresql/pgpass.j2", {**node(), **derived()})
    lines = text.splitlines()
    assert lines[0] == "*:*:*:pgautofailover_replicator:standby\\:secret\\\\"
    assert lines[1] == f"*:*:pg_auto_failover:autoctl_node:{KEEPERS}"
    assert len(lines) == 2  # no comment: libpq would read it as an entry


def test_the_monitor_health_checks_at_its_settings_and_admits_only_the_keepers():
    values = {
        **role_defaults("postgresql_monitor"),
        "__postgresql_monitor_versions": {"trixie": 17},
        "postgresql_monitor_password": KEEPERS,
    }
    values |= postgresql.monitor_derived("mon1", values, "trixie", GROUPS, RESOLVED)
    conf = render("etc/postgresql/monitor/webtier.conf.j2", values)
    assert "pgautofailover.primary_demote_timeout = 6000" in conf
    assert "pgautofailover.node_considered_unhealthy_timeout = 3000" in conf
    hba = render("etc/postgresql/monitor/pg_hba.conf.j2", values)
    assert "hostssl pg_auto_failover  autoctl_node  10.0.0.2/32  scram-sha-256" in hba
    assert "trust" not in hba


def test_the_model_refuses_a_set_without_the_standbys_password_and_a_hasty_monitor():
    found = schema.findings("db1", "postgresql", node(postgresql_replication_password=""))
    assert [f.variable for f in found] == ["postgresql_replication_password"]
    monitor = {**role_defaults("postgresql_monitor"), "postgresql_monitor_unhealthy_timeout": 1}
    monitor["postgresql_monitor_health_check_period"] = 1
    found = schema.findings("mon1", "postgresql_monitor", monitor)
    assert [f.variable for f in found] == ["postgresql_monitor_unhealthy_timeout"]


def test_the_firewall_admits_the_set_and_its_monitor_to_each_other_only():
    hostvars = {
        "db1": {"postgresql_replication_group": "dbset"},
        "db2": {"postgresql_replication_group": "dbset"},
        "mon1": {},
        "app1": {},
    }
    groups = {**GROUPS, "appservers": ["app1"]}
    rules = {h: firewall.plan(h, groups, hostvars) for h in ("db1", "mon1")}
    by_port = {h: {tuple(r["ports"]): r["sources"] for r in rs} for h, rs in rules.items()}
    assert by_port["db1"][(5432,)] == ["db2", "mon1"]  # the app servers reach PgBouncer only
    assert by_port["db1"][(6432,)] == ["app1"]
    assert by_port["mon1"] == {(5432,): ["db1", "db2"]}
    single = firewall.plan("db1", groups, {**hostvars, "db1": {}})
    assert [r["ports"] for r in single] == [[6432]]


def set_findings(groups, **db2):
    hostvars = {
        "db1": node("db1"),
        "db2": {**node("db2"), **db2},
        "mon1": {"postgresql_monitor_password": KEEPERS},
    }
    return [(f.host, f.variable) for f in invariants.database_set("db1", node(), hostvars, groups)]


def test_preflight_refuses_a_set_of_one_or_with_a_host_of_another_set():
    assert set_findings(GROUPS) == []
    alone = {**GROUPS, "dbset": ["db1"]}
    assert set_findings(alone) == [("db1", "postgresql_replication_group")]
    assert set_findings(GROUPS, postgresql_replication_group="other") == [
        ("db1", "postgresql_replication_group")
    ]


def test_preflight_refuses_a_set_without_one_monitor_of_its_own():
    none = {**GROUPS, "database_monitors": []}
    two = {**GROUPS, "database_monitors": ["mon1", "mon2"]}
    inside = {**GROUPS, "database_monitors": ["db2"]}
    for groups in (none, two, inside):
        assert set_findings(groups) == [("db1", "postgresql_monitor_group")]


def test_pg_autoctl_serves_on_loopback_and_the_host_address_not_every_interface():
    """pg_autoctl starts its server with -h from its own listen_addresses ('*' as it
    creates it), over any postgresql.conf: the role sets loopback and the host's address
    there, applied at a restart; a keeper's fencing timeout at a reload."""
    settings = {s["key"]: s for s in derived()["__postgresql_failover"]["pg_autoctl"]}
    assert settings["postgresql.listen_addresses"]["value"] == "localhost,10.0.0.1"
    assert settings["postgresql.listen_addresses"]["apply"] == "restart"
    assert settings["timeout.network_partition_timeout"] == {
        "key": "timeout.network_partition_timeout",
        "value": "4",
        "apply": "reload",
    }
    values = {
        **role_defaults("postgresql_monitor"),
        "__postgresql_monitor_versions": {"trixie": 17},
        "postgresql_monitor_password": KEEPERS,
    }
    monitor = postgresql.monitor_derived("mon1", values, "trixie", GROUPS, RESOLVED, "10.0.0.9")
    assert monitor["__postgresql_monitor_pg_autoctl"] == [
        {"key": "postgresql.listen_addresses", "value": "localhost,10.0.0.9", "apply": "restart"}
    ]


def test_preflight_refuses_a_set_whose_hosts_disagree_on_what_a_standby_needs():
    """Any host may become the primary: a standby below its primary's max_connections
    (or worker, sender, prepared-transaction, lock settings) stops, so the set's hosts
    must agree; and the set needs a sender per other host plus one, a slot per other."""
    assert set_findings(GROUPS, postgresql_max_connections=200) == [
        ("db1", "postgresql_max_connections")
    ]
    assert set_findings(GROUPS, postgresql_extra_config={"max_locks_per_transaction": 128}) == [
        ("db1", "postgresql_extra_config.max_locks_per_transaction")
    ]
    # db2 lower than db1: db1 is fine (the finding is db2's, when preflight checks it)
    assert set_findings(GROUPS, postgresql_max_connections=50) == []
    few = node(postgresql_extra_config={"max_wal_senders": 1})
    hostvars = {"db1": few, "db2": node("db2"), "mon1": {"postgresql_monitor_password": KEEPERS}}
    found = invariants.database_set("db1", few, hostvars, GROUPS)
    assert [(f.variable, f.value) for f in found] == [
        ("postgresql_extra_config.max_wal_senders", 1)
    ]
    assert "at least 2 for a set of 2 hosts" in found[0].limit


def test_the_model_refuses_a_replicated_host_without_replayable_wal_or_hot_standby():
    for setting in ({"wal_level": "minimal"}, {"hot_standby": "off"}):
        found = schema.findings("db1", "postgresql", node(postgresql_extra_config=setting))
        assert [f.variable for f in found] == [f"postgresql_extra_config.{next(iter(setting))}"]
        single = node(postgresql_replication_group="", postgresql_extra_config=setting)
        assert schema.findings("db1", "postgresql", single) == []
