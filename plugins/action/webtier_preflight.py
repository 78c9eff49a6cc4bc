"""Thin Ansible wrapper around webtier.checks.preflight: reads every host's variables as Ansible
resolves them (inventory, group_vars, host_vars, extra vars) and fails the task, before
any host is contacted, when the package finds a problem."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from webtier.checks import preflight
from webtier.model import capacity
from webtier.model.inventory import Unresolved, plain


class ActionModule(ActionBase):
    @staticmethod
    def _resolved(variables, name):
        """A variable as Ansible resolves it; one that does not resolve is judged by the
        model as such (a finding naming it), not left out."""
        try:
            return plain(variables[name])
        except AnsibleError as error:
            return Unresolved(str(error).splitlines()[0])

    TRANSFERS_FILES = False
    _requires_connection = False  # runs on the controller only
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        hostvars = task_vars["hostvars"]
        groups = {g: list(h) for g, h in task_vars["groups"].items()}
        values = {
            host: {
                k: self._resolved(hostvars[host], k)
                for k in hostvars[host]
                if k.startswith(preflight.PREFIXES) or k in preflight.CONNECTION
            }
            for host in groups.get("all", [])
        }
        findings = preflight.run(values, groups)
        result["changed"] = False
        if findings:
            result["failed"] = True
            result["msg"] = preflight.report(findings)
            return result
        model = capacity.model(values, groups)
        result["capacity"] = model.as_dict()
        result["msg"] = (
            f"Preflight passed for {len(values)} hosts. Bottleneck: the {model.bottleneck} tier, "
            f"{model.stack_concurrency} requests at once."
        )
        return result
