"""Replication and Sentinel failover, on each replicated set (Debian 13 and Debian 12)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from conftest import (
    SETS,
    VARS,
    info,
    main_pid,
    primary_by_sentinel,
    redis,
    sentinel,
    tls_flags,
    wait_for,
)

FAILOVER_BUDGET_S = (
    VARS["redis_sentinel_down_after_ms"] + VARS["redis_sentinel_failover_timeout_ms"]
) / 1000


@pytest.mark.parametrize("members", SETS.values(), ids=SETS.keys())
def test_replicas_are_in_sync(instances, members):
    primary, *replicas = (instances[name] for name in members)
    replication = info(primary, "replication")
    assert replication["role"] == "master"
    assert replication["connected_slaves"] == "2"
    states = [v for k, v in replication.items() if re.fullmatch(r"slave\d+", k)]
    assert all("state=online" in state for state in states), states
    assert redis(primary, "SET", "webtier:ha", "written-on-primary", user="app").strip() == "OK"
    # WAIT returns how many replicas acknowledged the write.
    assert redis(primary, "WAIT", "2", "5000", user="app").strip() == "2"
    for replica in replicas:
        assert redis(replica, "GET", "webtier:ha", user="app").strip() == "written-on-primary"
        assert "READONLY" in redis(replica, "SET", "webtier:ha", "x", user="app")


@pytest.mark.parametrize("members", SETS.values(), ids=SETS.keys())
def test_every_sentinel_knows_the_set(instances, members):
    for name in members:
        host = instances[name]
        assert primary_by_sentinel(host) == members[0]
        fields = sentinel(host, "SENTINEL", "MASTER", "webtier").splitlines()
        master = dict(zip(fields[::2], fields[1::2], strict=True))
        assert master["num-slaves"] == "2"
        assert master["num-other-sentinels"] == "2"
        assert master["quorum"] == str(VARS["redis_sentinel_quorum"])
        assert master["down-after-milliseconds"] == str(VARS["redis_sentinel_down_after_ms"])


def test_sentinel_requires_its_password(instances):
    host = instances["ha13-b"]
    ask = "SENTINEL get-master-addr-by-name webtier"
    reply = host.run(f"redis-cli {tls_flags(host)}-p 26379 {ask}")
    assert "NOAUTH" in reply.stdout + reply.stderr


@dataclass
class Failover:
    old: str
    new: str
    promoted_after_s: float
    write_reply: str
    rejoined: bool
    old_role: dict


def failover(instances, members) -> Failover:
    old_primary = instances[members[0]]
    witness = instances[members[1]]
    old_primary.check_output("systemctl stop redis-server")

    def promoted():
        now = primary_by_sentinel(witness)
        return now if now != members[0] else None

    new, waited = wait_for(promoted, timeout=FAILOVER_BUDGET_S + 10)
    assert new, f"no promotion within {waited:.1f} s"
    write = redis(instances[new], "SET", "webtier:after-failover", "ok", user="app").strip()

    old_primary.check_output("systemctl start redis-server")

    def rejoined():
        role = info(old_primary, "replication")
        return (
            role if role.get("role") == "slave" and role.get("master_link_status") == "up" else None
        )

    role, rejoin_s = wait_for(rejoined, timeout=60, step=1)
    print(
        f"failover {members[0]} -> {new}: promoted after {waited:.1f} s;"
        f" old primary a replica again {rejoin_s:.1f} s after its start"
    )
    return Failover(members[0], new, waited, write, bool(role), role or {})


@pytest.fixture(scope="module")
def failovers(instances):
    return {name: failover(instances, members) for name, members in SETS.items()}


@pytest.mark.parametrize("set_name", SETS.keys())
def test_sentinel_promotes_a_replica_when_the_primary_stops(failovers, set_name):
    result = failovers[set_name]
    assert result.new in SETS[set_name][1:]
    assert result.promoted_after_s <= FAILOVER_BUDGET_S, result


@pytest.mark.parametrize("set_name", SETS.keys())
def test_writes_succeed_on_the_new_primary(failovers, set_name):
    assert failovers[set_name].write_reply == "OK"


@pytest.mark.parametrize("set_name", SETS.keys())
def test_old_primary_rejoins_as_a_replica(failovers, instances, set_name):
    result = failovers[set_name]
    assert result.rejoined, result.old_role
    assert result.old_role["master_host"] == result.new
    old = instances[result.old]
    assert redis(old, "GET", "webtier:after-failover", user="app").strip() == "ok"


def test_converge_after_a_failover_keeps_the_new_topology(failovers, instances, run_converge):
    """The role asks Sentinel who the primary is: a re-run restarts nothing, undoes nothing."""
    pids = {name: main_pid(host) for name, host in instances.items()}
    result = run_converge()
    assert result.returncode == 0, result.stdout[-3000:]
    assert {name: main_pid(host) for name, host in instances.items()} == pids
    for set_name, members in SETS.items():
        new = failovers[set_name].new
        for name in members:
            assert primary_by_sentinel(instances[name]) == new
            role = info(instances[name], "replication")
            assert role["role"] == ("master" if name == new else "slave"), (name, role["role"])
