"""Thin Ansible wrappers over the package (shared with the pyinfra engine): which roles
a host runs; the app server a load balancer's upstreams name (playbooks/deploy.yml drains it), and
whether draining it would leave a location of a load balancer with no serving server."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier.files import nginx
from webtier.model import topology


def webtier_roles_of(host, groups):
    """The roles site.yml runs on ``host``, in order."""
    return topology.roles_of(host, groups)


def webtier_app_server(host, hostvars):
    """{kind, protocol, address} of the app server on ``host``, as the load balancers'
    upstreams name it (webtier.files.nginx.app_server)."""
    try:
        return nginx.app_server(host, hostvars[host])
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


def webtier_drain_probes(host, lb, groups, hostvars):
    """What ``lb`` probes to know whether the other servers of ``host``'s locations
    serve (webtier.files.nginx.peer_probes)."""
    try:
        return nginx.peer_probes(host, lb, groups, hostvars)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


def webtier_drain_blockers(  # noqa: PLR0913, PLR0917 (a Jinja2 filter's arguments are positional)
    host, lb, groups, hostvars, http_conf, failing
):
    """The locations of ``lb`` that draining ``host`` would leave with no serving
    server, its peers marked down in ``http_conf`` (the live file) or ``failing`` their
    probe not counting (webtier.files.nginx.drain_blockers)."""
    unavailable = [*nginx.marked_down(str(http_conf)), *failing]
    try:
        return nginx.drain_blockers(host, lb, groups, hostvars, unavailable)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {
            "webtier_roles_of": webtier_roles_of,
            "webtier_app_server": webtier_app_server,
            "webtier_drain_probes": webtier_drain_probes,
            "webtier_drain_blockers": webtier_drain_blockers,
        }
