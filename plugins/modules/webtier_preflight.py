"""The documentation of the action plugin plugins/action/webtier_preflight.py (it runs
on the controller and contacts no host).
This file carries its documentation only (ansible-doc -t module webtier.stack.webtier_preflight)."""

DOCUMENTATION = r"""
module: webtier_preflight
short_description: Check the whole inventory before any host changes
description:
  - Every host's variables, as Ansible resolves them, against the argument specs of the roles
    it runs, then the invariants between the layers (backlogs against somaxconn, the load
    balancers' connections against the app tier, the app's Redis, the replicated set, the
    broker) and the placeholders a new environment left (C(CHANGE_ME)); the pyinfra engine
    runs the very same checks (webtier.checks.preflight).
  - Fails with every finding at once; on success returns the capacity model.
author: webtier maintainers
options: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Preflight
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the whole inventory
      webtier.stack.webtier_preflight:
"""

RETURN = r"""
capacity:
  description: The capacity model of the inventory (webtier.model.capacity), per tier.
  type: dict
  returned: success
"""
