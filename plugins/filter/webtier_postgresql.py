"""Thin Ansible wrapper: which lines of a pgbouncer.ini only a restart applies
(webtier.files.postgresql.pgbouncer_listeners, as the pyinfra engine reads them). What the role
derives (version, memory, verifiers): the ``derived`` lookup and the role_files action."""

from __future__ import annotations

from webtier.files import postgresql


def webtier_pgbouncer_listeners(ini):
    """The lines of a pgbouncer.ini that only a restart applies."""
    return postgresql.pgbouncer_listeners(str(ini))


def webtier_scram_verifier(database):
    """The SCRAM verifier of a postgresql_databases entry's user (the scenarios' hunts
    look for it in what the engines print)."""
    return postgresql.scram_verifier(str(database["user"]), str(database["password"]))


class FilterModule:
    def filters(self):
        return {
            "webtier_pgbouncer_listeners": webtier_pgbouncer_listeners,
            "webtier_scram_verifier": webtier_scram_verifier,
        }
