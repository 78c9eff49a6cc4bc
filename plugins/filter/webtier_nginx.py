"""Thin Ansible wrapper: the load balancer's plan is computed by webtier.nginx (shared
with the pyinfra engine), so both engines render the same upstreams and sites."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier import nginx


def webtier_nginx_plan(settings, groups, hostvars, release="trixie"):
    """Upstreams from the inventory, resolved sites, the workers' descriptor limit and
    how the host's nginx (``release``: its Debian codename) spells HTTP/2."""
    try:
        return nginx.plan(settings, groups, hostvars, release)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"webtier_nginx_plan": webtier_nginx_plan}
