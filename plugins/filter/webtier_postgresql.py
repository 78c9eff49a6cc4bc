"""Thin Ansible wrapper: which lines of a pgbouncer.ini only a restart applies
(webtier.files.postgresql.pgbouncer_listeners, as the pyinfra engine reads them). What the role
derives (version, memory, verifiers): the ``derived`` lookup and the role_files action."""

from __future__ import annotations

from webtier.files import postgresql


def webtier_pgbouncer_listeners(ini):
    """The lines of a pgbouncer.ini that only a restart applies."""
    return postgresql.pgbouncer_listeners(str(ini))


class FilterModule:
    def filters(self):
        return {"webtier_pgbouncer_listeners": webtier_pgbouncer_listeners}
