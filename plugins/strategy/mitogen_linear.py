# Mitogen for Ansible's linear strategy, from the pip-installed `mitogen` package
# (requirements.txt). Ansible finds strategies by directory (ansible.cfg
# `strategy_plugins`), and the package's own directory sits at a path that depends
# on the virtualenv and its Python version; this file gives it a fixed place in the
# project. Mitogen keeps one Python interpreter per host for the whole run instead
# of starting one per task (see README, "Speed").
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
