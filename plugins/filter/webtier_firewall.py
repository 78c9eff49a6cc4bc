"""Thin Ansible wrapper: a host's firewall rules are planned by webtier.firewall, the
same function the pyinfra engine and the render command use."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier import firewall


def webtier_firewall_rules(host, groups, hostvars, getent_results=None):
    """[{ports, sources, why}] of ``host``, from the inventory; with the registered
    results of ``getent ahostsv4`` (one per source), sources are addresses."""
    resolved = None
    if getent_results is not None:
        resolved = {
            r["item"]: firewall.addresses(r["item"], r.get("stdout", "")) for r in getent_results
        }
    try:
        return firewall.plan(host, groups, hostvars, resolved)
    except (ValueError, KeyError) as error:
        raise AnsibleFilterError(f"{host}: {error}") from None


def webtier_firewall_sources(host, groups, hostvars):
    """The names ``host``'s rules admit (resolved on the host)."""
    try:
        return firewall.sources(host, groups, hostvars)
    except (ValueError, KeyError) as error:
        raise AnsibleFilterError(f"{host}: {error}") from None


class FilterModule:
    def filters(self):
        return {
            "webtier_firewall_rules": webtier_firewall_rules,
            "webtier_firewall_sources": webtier_firewall_sources,
        }
