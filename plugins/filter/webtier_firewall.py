"""Thin Ansible wrapper: the names a host's firewall rules admit (webtier.files.firewall, as
the pyinfra engine lists them), which the role resolves on the host. The rules
themselves: the role_files action (webtier.files.configs.derived)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier.files import firewall


def webtier_firewall_sources(host, groups, hostvars):
    """The names ``host``'s rules admit (resolved on the host)."""
    try:
        return firewall.sources(host, groups, hostvars)
    except (ValueError, KeyError) as error:
        raise AnsibleFilterError(f"{host}: {error}") from None


class FilterModule:
    def filters(self):
        return {
            "webtier_firewall_sources": webtier_firewall_sources,
        }
