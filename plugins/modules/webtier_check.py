"""The documentation of the action plugin plugins/action/webtier_check.py (it runs on the
controller; there is no module to send to the host).
This file carries its documentation only (ansible-doc -t module webtier.stack.webtier_check)."""

DOCUMENTATION = r"""
module: webtier_check
short_description: Check a role's variables against the model and against the host
description:
  - Runs on the controller, before the role changes anything. The role's variables, as this
    host resolves them, are checked against the typed model of every role it runs
    (webtier.model.schema) and, with O(facts), against the limits the host grants
    (somaxconn, the SYN backlog, file descriptors, the release; webtier.checks.live).
  - Fails with every problem at once, each naming the variable, its value, the limit it breaks
    and a fix; what deserves a word (and is not wrong) comes back as warnings.
  - Secrets never reach the output.
author: webtier maintainers
options:
  roles:
    description: The roles whose variables to check (as the host runs them).
    type: list
    elements: str
    required: true
  facts:
    description:
      - What the kernel_tuning role publishes (kernel_tuning_effective). Without it, the model
        alone.
    type: dict
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the variables against this host before changing it
  webtier.stack.webtier_check:
    roles: [redis]
    facts: "{{ kernel_tuning_effective }}"
"""

RETURN = r"""
warnings:
  description: What deserves a word, for example vm.overcommit_memory=0 on a Redis host.
  type: list
  returned: when there is any
"""
