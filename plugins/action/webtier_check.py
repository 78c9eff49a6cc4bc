"""Thin Ansible wrapper around webtier.checks.live.check: a role's variables, as this host
resolves them, against the model and against the limits the host grants (``facts``:
kernel_tuning_effective; without them, the model only). Fails the task, before the role
changes anything, with every problem at once; says what deserves a word as warnings."""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from webtier.checks import live, preflight
from webtier.model import schema
from webtier.model.inventory import Unresolved, plain


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # judges facts already gathered, on the controller
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        roles = self._task.args["roles"]
        given = self._task.args.get("facts")
        facts = live.HostFacts.read(plain(given)) if given else None
        host = task_vars["inventory_hostname"]
        values = {}
        own = {f for role in roles for f in schema.MODELS[role].model_fields}
        for name in task_vars:
            if name.startswith(preflight.PREFIXES) and name not in preflight.NOT_ARGUMENTS:
                try:
                    values[name] = plain(self._templar.template(task_vars[name]))
                except AnsibleError as error:
                    # one of these roles' inputs that does not resolve is refused by the
                    # model; another role's needs what this play does not define
                    if name in own:
                        values[name] = Unresolved(str(error).splitlines()[0])
        result["changed"] = False
        result["warnings"] = live.notes(host, roles, values, facts)
        peers = None
        group = values.get("redis_replication_group")
        if "redis" in roles and group:  # the hosts of its replicated set, itself included
            hostvars = task_vars["hostvars"]
            # Another host's hostvars hold what the inventory gives it, not this play's
            # vars: a host without its own redis_sentinel runs this play's.
            play = {"redis_sentinel": values.get("redis_sentinel", False)}
            peers = {
                m: play | {k: plain(hostvars[m][k]) for k in hostvars[m] if k.startswith("redis_")}
                for m in task_vars["groups"].get(group, [])
            }
        findings = live.check(host, roles, values, facts, peers)
        if findings:
            result["failed"] = True
            result["msg"] = live.report(findings)
        return result
