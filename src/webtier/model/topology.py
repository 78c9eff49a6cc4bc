"""Which roles a host runs: by the groups site.yml's plays target, in the order of its
plays. One home for it: the model and preflight check a host's variables by it, the
render command and both engines write a host's files by it, the pyinfra engine runs a
host's roles in its order, and tests/unit/test_topology.py holds site.yml's plays to
it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: The roles of each group, in site.yml's play order; app and worker hosts also run
#: python_app (through gunicorn, uwsgi or celery_worker).
HOST_ROLES = {
    "all": ["kernel_tuning", "firewall"],
    "redis": ["redis"],
    "database_monitors": ["postgresql_monitor"],
    "databases": ["postgresql", "pgbackrest"],
    "backups": ["pgbackrest"],
    "app_gunicorn": ["python_app", "gunicorn"],
    "app_uwsgi": ["python_app", "uwsgi"],
    "workers": ["python_app", "celery_worker"],
    "loadbalancers": ["nginx"],
}


def roles_of(host: str, groups: Mapping[str, Sequence[str]]) -> list[str]:
    roles: list[str] = []
    for group, names in HOST_ROLES.items():
        if group == "all" or host in groups.get(group, ()):
            roles += [r for r in names if r not in roles]
    return roles
