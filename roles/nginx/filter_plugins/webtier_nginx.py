"""Thin Ansible wrapper: the load balancer's plan is computed by webtier.nginx (shared
with the pyinfra engine), so both engines render the same upstreams and sites."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier import nginx


def webtier_nginx_plan(settings, groups, hostvars):
    """Upstreams from the inventory, resolved sites and the workers' descriptor limit."""
    try:
        return nginx.plan(settings, groups, hostvars)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"webtier_nginx_plan": webtier_nginx_plan}
