"""What a role's task hands the package: the role's variables as this host resolves
them (defaults, inventory, role vars, facts set by earlier tasks) and the facts the role
read from the host. Shared by the ``derived`` lookup and the ``role_files`` action, so
that what a role derives is computed from the same inputs wherever it is read."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleError

from webtier.files import configs
from webtier.files.facts import Facts
from webtier.model.inventory import plain


def role_variables(role: str, variables: dict[str, Any], templar) -> dict[str, Any]:
    """Every variable ``role``'s files and derivations read that the host defines
    (webtier.files.configs.inputs), templated; one that needs what this play does not define
    is left out, as an undefined one is."""
    values = {}
    for name in configs.inputs(role):
        if name in variables:
            try:
                values[name] = plain(templar.template(variables[name]))
            except AnsibleError:
                continue
    return values


def role_facts(
    values: dict[str, Any], variables: dict[str, Any], extra: dict[str, Any] | None
) -> Facts:
    """The host's facts: kernel_tuning_effective when this play published it, and the
    ones the role read itself (``extra``); the rest assumed from the inventory."""
    effective = variables.get("kernel_tuning_effective")
    try:
        return Facts.read(values, plain(effective) if effective else None, plain(extra))
    except ValueError as error:
        raise AnsibleError(str(error)) from None


def derived(role: str, variables: dict[str, Any], templar, extra=None) -> tuple[dict, dict]:
    """(the role's variables, what the role derives: webtier.files.configs.derived)."""
    values = role_variables(role, variables, templar)
    facts = role_facts(values, variables, extra)
    try:
        found = configs.derived(role, values, facts, variables["groups"], variables["hostvars"])
    except (KeyError, ValueError) as error:
        raise AnsibleError(f"{role}: {error}") from None
    return values, found
