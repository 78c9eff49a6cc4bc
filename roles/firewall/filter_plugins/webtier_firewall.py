"""Thin Ansible wrapper: a host's firewall rules are planned by webtier.firewall, the
same function the pyinfra engine and the render command use."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier import firewall


def webtier_firewall_rules(host, groups, hostvars):
    """[{ports, sources, why}] of ``host``, from the inventory."""
    try:
        return firewall.plan(host, groups, hostvars)
    except (ValueError, KeyError) as error:
        raise AnsibleFilterError(f"{host}: {error}") from None


class FilterModule:
    def filters(self):
        return {"webtier_firewall_rules": webtier_firewall_rules}
