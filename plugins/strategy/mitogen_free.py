# Mitogen for Ansible's free strategy, from the pip-installed `mitogen` package
# (requirements.txt). Ansible finds strategies by directory (ansible.cfg
# `strategy_plugins`), and the package's own directory sits at a path that depends
# on the virtualenv and its Python version; this file gives it a fixed place in the
# project. Mitogen keeps one Python interpreter per host for the whole run instead
# of starting one per task (see README, "Speed").
DOCUMENTATION = r"""
name: mitogen_free
short_description: Ansible's free strategy run by Mitogen for Ansible
description:
  - The C(free) strategy of the pip-installed C(mitogen) package. It keeps one Python
    interpreter per host for the whole run instead of starting one per task.
  - "Use it with C(strategy: mitogen_free) and C(strategy_plugins) naming this
    collection's C(plugins/strategy) directory (Mitogen recognises its strategies by
    their short names)."
author: webtier maintainers
"""

from ansible_mitogen.plugins.strategy.mitogen_free import StrategyModule  # noqa: E402 (after DOCUMENTATION, which ansible-doc reads)

__all__ = ["StrategyModule"]
