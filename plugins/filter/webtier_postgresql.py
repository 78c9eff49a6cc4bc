"""Thin Ansible wrapper: which lines of a pgbouncer.ini only a restart applies
(webtier.files.postgresql.pgbouncer_listeners, as the pyinfra engine reads them). What the role
derives (version, memory): the ``derived`` lookup and the role_files action; the verifier
each database user is to have, from what the server stores (the role hands it to both)."""

from __future__ import annotations

from webtier.files import postgresql


def webtier_pgbouncer_listeners(ini):
    """The lines of a pgbouncer.ini that only a restart applies."""
    return postgresql.pgbouncer_listeners(str(ini))


def webtier_postgresql_verifiers(stored, databases):
    """The verifier each database user is to have (webtier.files.postgresql.kept_verifiers):
    ``stored`` is what the server stores, the rows (rolname, rolpassword) of a query."""
    return postgresql.kept_verifiers(
        databases, {str(row["rolname"]): row["rolpassword"] for row in stored or []}
    )


def webtier_postgresql_failover_names(host, variables, groups):
    """The hosts a replicated database host's rules name (postgresql.failover_names)."""
    return postgresql.failover_names(host, variables, groups)


class FilterModule:
    def filters(self):
        return {
            "webtier_pgbouncer_listeners": webtier_pgbouncer_listeners,
            "webtier_postgresql_verifiers": webtier_postgresql_verifiers,
            "webtier_postgresql_failover_names": webtier_postgresql_failover_names,
        }
