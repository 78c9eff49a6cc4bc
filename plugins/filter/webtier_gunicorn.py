"""Thin Ansible wrappers: Gunicorn's sizes (``auto`` workers, threads and
worker_connections for the host's CPUs) come from webtier.derive, the rule the pyinfra
engine, the render command and the capacity model use; the proxies it trusts from
webtier.firewall, as pyinfra computes them."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier import derive, firewall


def webtier_gunicorn_sizes(worker_class, workers, threads, worker_connections, cpus):
    """{workers, threads, worker_connections} for this host."""
    return derive.gunicorn_sizes(worker_class, workers, threads, worker_connections, cpus)


def webtier_trusted_proxies(setting, groups, getent_results):
    """forwarded_allow_ips: ``setting``, or for auto 127.0.0.1 and the load balancers'
    addresses from the registered results of ``getent ahostsv4`` (webtier.firewall)."""
    resolved = {
        r["item"]: firewall.addresses(r["item"], r.get("stdout", ""))
        for r in getent_results
        if "item" in r
    }
    try:
        return firewall.trusted_proxies(setting, groups, resolved)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {
            "webtier_gunicorn_sizes": webtier_gunicorn_sizes,
            "webtier_trusted_proxies": webtier_trusted_proxies,
        }
