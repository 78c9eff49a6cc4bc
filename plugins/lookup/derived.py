"""Thin Ansible wrapper: what a role derives from its variables and the host's facts
(webtier.files.configs.derived, the function the pyinfra engine and the render command call),
for the role's tasks; its templates get the same values from the role_files action."""

from __future__ import annotations

from ansible.plugins.lookup import LookupBase
from ansible_collections.webtier.stack.plugins.plugin_utils.webtier_role import derived

from webtier.files import configs

DOCUMENTATION = r"""
name: derived
author: webtier
short_description: What a role derives from its variables and the host
description:
  - Returns what the role computes before it templates (webtier.files.configs.derived), from
    the role's variables as the task sees them and the host's facts, named without the
    role's prefix (C(__redis_paths) is C(paths)).
  - Facts come from C(kernel_tuning_effective) when the play published it, and from
    I(facts); what neither gives is assumed from the inventory, as the render command
    does.
options:
  _terms:
    description: The role (one).
    required: true
extends_documentation_fragment:
  - webtier.stack.role_facts
"""

EXAMPLES = r"""
- name: Compute what the role derives
  ansible.builtin.set_fact:
    __redis: "{{ lookup('webtier.stack.derived', 'redis', facts={'ipv4': '10.0.0.5'}) }}"
"""

RETURN = r"""
_raw:
  description: One dict, what the role derives.
  type: list
  elements: dict
"""


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        (role,) = terms
        _, found = derived(role, variables, self._templar, self.get_option("facts"))
        return [configs.short_names(role, found)]
