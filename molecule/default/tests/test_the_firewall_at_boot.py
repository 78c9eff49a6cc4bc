"""Boot drill of the tier firewall on redis1: it loads before the network and without
name resolution, and a tier table that fails to load leaves the host closed, not open.

Name resolution is taken away the way it survives a restart: nsswitch.conf says
``hosts: files`` (the container engine's DNS is no longer asked), then the container
restarts. Runs last in the scenario (it restarts a host); restores what it changed.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from test_stack import reaches

HOST = "redis1"
BROKEN = "table inet webtier {\n    chain input {\n        no_such_statement\n    }\n}\n"


def docker(*args: str) -> str:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def address_of(name: str) -> str:
    networks = json.loads(docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", name))
    return next(iter(networks.values()))["IPAddress"]


def table() -> str:
    return docker("exec", HOST, "nft", "list", "table", "inet", "webtier")


def booted(timeout: float = 120) -> str:
    """Wait until the host's boot is over: running, or degraded (a container has units
    that cannot start). Right after the restart systemd may not even answer yet."""
    deadline = time.monotonic() + timeout
    while True:
        state = subprocess.run(
            ["docker", "exec", HOST, "systemctl", "is-system-running"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if state in ("running", "degraded") or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


@pytest.fixture(scope="module")
def rebooted_without_dns():
    nsswitch = docker("exec", HOST, "cat", "/etc/nsswitch.conf")
    docker("exec", HOST, "sed", "-i", "s/^hosts:.*/hosts: files/", "/etc/nsswitch.conf")
    docker("restart", HOST)
    yield booted()
    docker("exec", "-i", HOST, "sh", "-c", f"cat > /etc/nsswitch.conf <<'EOF'\n{nsswitch}EOF")


def test_the_host_has_no_name_resolution_after_the_restart(instances, rebooted_without_dns):
    assert rebooted_without_dns in ("running", "degraded"), "the boot did not finish"
    assert instances[HOST].run("getent hosts app1").rc != 0


def test_the_table_is_loaded_at_boot_with_policy_drop(instances, rebooted_without_dns):
    assert instances[HOST].run("systemctl is-active webtier-firewall").stdout.strip() == "active"
    rules = table()
    assert "policy drop" in rules
    # The app servers' addresses, resolved at converge time, not their names.
    assert address_of("app1") in rules
    assert "app1" not in rules


@pytest.mark.parametrize(
    ("source", "port", "allowed"),
    [("app1", 6379, True), ("app2", 6379, True), ("lb1", 6379, False), ("app3", 6379, True)],
)
def test_the_tier_rules_admit_the_right_tiers_after_the_boot(
    instances, rebooted_without_dns, source, port, allowed
):
    assert reaches(instances[source], HOST, port) == allowed


def test_a_table_that_fails_to_load_leaves_the_host_closed(instances, rebooted_without_dns):
    host = instances[HOST]
    host.check_output("cp /etc/webtier/firewall.nft /run/firewall.nft.good")
    try:
        docker(
            "exec", "-i", HOST, "sh", "-c", f"cat > /etc/webtier/firewall.nft <<'EOF'\n{BROKEN}EOF"
        )
        assert host.run("systemctl restart webtier-firewall").rc != 0
        rules = table()
        assert "policy drop" in rules
        assert "6379" not in rules, rules
        assert not reaches(instances["app1"], HOST, 6379)  # closed, even to the right tier
    finally:
        host.check_output("cp /run/firewall.nft.good /etc/webtier/firewall.nft")
        host.check_output("systemctl restart webtier-firewall")
    assert reaches(instances["app1"], HOST, 6379)
