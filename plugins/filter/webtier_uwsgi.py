"""Thin Ansible wrapper: uWSGI's ``auto`` processes for the host's CPUs come from
webtier.derive, the rule the pyinfra engine, the render command and the capacity model
use."""

from __future__ import annotations

from webtier import derive


def webtier_uwsgi_processes(processes, cpus):
    """uwsgi_processes with ``auto`` resolved."""
    return derive.uwsgi_processes(processes, cpus)


class FilterModule:
    def filters(self):
        return {"webtier_uwsgi_processes": webtier_uwsgi_processes}
