"""Thin Ansible wrapper: what the postgresql role derives before it templates (its
version, memory settings, the users' SCRAM verifiers, PgBouncer's descriptor limit) is
computed by webtier.configs, the function the pyinfra engine and the render command use."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from webtier import configs
from webtier.inventory import defined, plain


def webtier_postgresql(values, release, memtotal_mb):
    """{name: value} of the role's inputs (configs.DERIVED_INPUTS['postgresql']) ->
    __postgresql_version, __postgresql_memory, __postgresql_users,
    __postgresql_pgbouncer_nofile. A variable the host does not define comes as
    webtier.inventory.UNDEFINED and is left out (webtier.inventory.defined)."""
    given = defined(plain(values))
    try:
        return configs.postgresql_derived(given, str(release), int(memtotal_mb))
    except (KeyError, ValueError) as error:
        raise AnsibleFilterError(f"postgresql: {error}") from None


def webtier_pgbouncer_listeners(ini):
    """The lines of a pgbouncer.ini that only a restart applies."""
    return configs.pgbouncer_listeners(str(ini))


def webtier_postgresql_inputs(_):
    """The names of the variables webtier_postgresql reads."""
    return list(configs.DERIVED_INPUTS["postgresql"])


class FilterModule:
    def filters(self):
        return {
            "webtier_postgresql": webtier_postgresql,
            "webtier_postgresql_inputs": webtier_postgresql_inputs,
            "webtier_pgbouncer_listeners": webtier_pgbouncer_listeners,
        }
