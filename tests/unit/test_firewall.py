"""The tier firewall's plan (webtier.files.firewall): sources resolved on the host at converge
time, so that the table loads at boot without name resolution."""

from __future__ import annotations

import pytest

from webtier.files import firewall

GROUPS = {
    "all": ["lb1", "app1", "redis1"],
    "loadbalancers": ["lb1"],
    "appservers": ["app1"],
    "redis": ["redis1"],
}
HOSTVARS = {name: {"webtier_app_server": "gunicorn"} for name in GROUPS["all"]}


def test_the_names_to_resolve_are_the_calling_tiers():
    assert firewall.sources("app1", GROUPS, HOSTVARS) == ["lb1"]
    assert firewall.sources("redis1", GROUPS, HOSTVARS) == ["app1"]
    assert firewall.sources("lb1", GROUPS, HOSTVARS) == []  # from anywhere


def test_getent_output_gives_each_address_once():
    out = (
        "10.0.0.5      STREAM lb1\n10.0.0.5      DGRAM  \n10.0.0.5      RAW    \n10.0.1.5 STREAM\n"
    )
    assert firewall.addresses("lb1", out) == ["10.0.0.5", "10.0.1.5"]
    assert firewall.addresses("lb1", "") == []


def test_resolved_rules_hold_addresses_not_names():
    rules = firewall.plan("app1", GROUPS, HOSTVARS, {"lb1": ["10.0.0.5"]})
    assert [r["sources"] for r in rules] == [["10.0.0.5"]]
    # Without a host to ask (the render command), the names stay.
    assert [r["sources"] for r in firewall.plan("app1", GROUPS, HOSTVARS)] == [["lb1"]]


def test_a_name_the_host_cannot_resolve_stops_the_run():
    with pytest.raises(ValueError, match="lb1 cannot be resolved on app1"):
        firewall.plan("app1", GROUPS, HOSTVARS, {"lb1": []})
