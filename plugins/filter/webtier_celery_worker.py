"""Thin Ansible wrapper: the worker units' concurrency (``auto`` = the host's CPUs) and stop
timeout come from webtier.derive, the rule the pyinfra engine, the render command and the capacity
model use."""

from __future__ import annotations

from webtier import derive


def webtier_celery_queues(queues, cpus):
    """celery_worker_queues with each concurrency resolved for ``cpus``."""
    return derive.celery_queues(queues, cpus)


def webtier_celery_stop_timeout(time_limit):
    """The units' TimeoutStopSec for this hard time limit."""
    return derive.celery_stop_timeout(time_limit)


class FilterModule:
    def filters(self):
        return {
            "webtier_celery_queues": webtier_celery_queues,
            "webtier_celery_stop_timeout": webtier_celery_stop_timeout,
        }
