"""The documentation of the action plugin plugins/action/packages.py (it asks dpkg on the
host, then runs ansible.builtin.apt only when a package is missing).
This file carries its documentation only (ansible-doc -t module webtier.stack.packages)."""

DOCUMENTATION = r"""
module: packages
short_description: Debian packages present, apt's cache opened only when one is missing
description:
  - Asks dpkg on the host whether every package in O(name) is installed. If so, nothing
    else runs and nothing changes.
  - Otherwise (or for a name that is not a plain package name) it is ansible.builtin.apt
    with the same arguments and O(state=present).
  - On a converged host apt spends most of a no-op run opening its cache, and dpkg answers
    in milliseconds.
author: webtier maintainers
options:
  name:
    description: The packages.
    type: list
    elements: str
    required: true
  state:
    description: Only C(present).
    type: str
    choices: [present]
    default: present
  update_cache:
    description: As ansible.builtin.apt, when apt runs.
    type: bool
  cache_valid_time:
    description: As ansible.builtin.apt, when apt runs.
    type: int
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Install nftables
  webtier.stack.packages:
    name: nftables
    update_cache: true
    cache_valid_time: 3600
"""

RETURN = r"""
msg:
  description: Which packages dpkg says are installed, when apt did not run.
  type: str
  returned: when apt did not run
"""
