"""Thin Ansible wrapper: Gunicorn's sizes (``auto`` workers, threads and
worker_connections for the host's CPUs) come from webtier.derive, the rule the pyinfra
engine, the render command and the capacity model use."""

from __future__ import annotations

from webtier import derive


def webtier_gunicorn_sizes(worker_class, workers, threads, worker_connections, cpus):
    """{workers, threads, worker_connections} for this host."""
    return derive.gunicorn_sizes(worker_class, workers, threads, worker_connections, cpus)


class FilterModule:
    def filters(self):
        return {"webtier_gunicorn_sizes": webtier_gunicorn_sizes}
