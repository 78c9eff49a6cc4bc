"""Thin Ansible wrapper: write a role's config files as templates/files.yml lists them,
with what the role derives (webtier.files.configs.role_files: the function the pyinfra engine
and the render command call), through Ansible's own template action (check mode, diff,
validate). One call per template; a template with a loop (nginx's sites, Celery's
queues) writes each of its files."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.webtier.stack.plugins.plugin_utils.webtier_role import (
    role_facts,
    role_variables,
)

from webtier import TEMPLATES
from webtier.files import configs

#: Where a candidate (a scratch copy a check reads before the live file changes) goes.
CANDIDATES = "/var/lib/webtier/candidates"


def staged(dest, to, below=None):
    """Where a file at ``dest`` goes in a staging directory ``to``: its path under
    ``below`` kept (nginx's tree, checked as a whole), else its name alone."""
    if below and dest.startswith(below.rstrip("/") + "/"):
        return to.rstrip("/") + dest[len(below.rstrip("/")) :]
    return f"{to.rstrip('/')}/{PurePosixPath(dest).name}"


def _diffs(result):
    diff = result.get("diff") or []
    return diff if isinstance(diff, list) else [diff]


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _supports_check_mode = True
    _VALID_ARGS = frozenset(
        ("role", "template", "facts", "validate", "candidate", "stage", "suffix", "render_dir")
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        role, template = args["role"], args.get("template")
        render_dir = args.get("render_dir")
        values = role_variables(role, task_vars, self._templar)
        if render_dir:
            # A render reaches no host: its facts are assumed from the inventory, as the
            # render command's, and how the inventory reaches the host (not this task's
            # local connection) tells a container.
            inventory = task_vars["hostvars"][task_vars["inventory_hostname"]]
            facts = role_facts(
                values | {k: inventory[k] for k in configs.FACT_INPUTS if k in inventory}, {}, None
            )
        else:
            facts = role_facts(values, task_vars, args.get("facts"))
        try:
            files = configs.role_files(
                role, values, facts, task_vars["groups"], task_vars["hostvars"]
            )
        except (KeyError, ValueError, TypeError) as error:
            raise AnsibleActionFail(f"{role}: {error}") from None
        if template is not None:
            wanted = [template] if isinstance(template, str) else list(template)
            known = {s["template"] for s in configs.manifest().get(role, [])}
            if unknown := [t for t in wanted if t not in known]:
                raise AnsibleActionFail(f"{role}: templates/files.yml lists no {unknown}")
            # in the order asked (a file another one's check reads goes first)
            files = [f for t in wanted for f in files if f["template"] == t]
        written = []
        for file in files:
            one = self._write(file, task_vars, args, render_dir)
            written.append(one)
            if one.get("failed"):
                break
        return result | self._summary(written)

    def _write(self, file, task_vars, args, render_dir):
        task = self._task.copy()
        dest = file["dest"]
        if render_dir:
            dest = f"{render_dir}/{task_vars['inventory_hostname']}{dest}"
            os.makedirs(os.path.dirname(dest), exist_ok=True)  # on the controller
            task.args = {"mode": "0600" if file["secret"] else "0644"}
        else:
            stage = args.get("stage") or ({"to": CANDIDATES} if args.get("candidate") else None)
            if stage:
                dest = staged(dest, stage["to"], stage.get("from"))
            dest += args.get("suffix") or ""
            task.args = {k: file[k] for k in ("owner", "group", "mode")}
            if args.get("validate"):
                task.args["validate"] = args["validate"]
        task.args |= {"src": str(TEMPLATES / file["template"]), "dest": dest}
        action = self._shared_loader_obj.action_loader.get(
            "ansible.builtin.template",
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        try:
            # The templates' imports (templates/macros) resolve under TEMPLATES, as in the
            # package's own Jinja environment.
            search = {"ansible_search_path": [str(TEMPLATES)]}
            one = action.run(task_vars={**task_vars, **file["vars"], **search})
        except AnsibleError as error:
            one = {"failed": True, "msg": str(error)}
        # where it went, and the place templates/files.yml gives it (a candidate's live file)
        one |= {"dest": dest, "path": file["dest"]} | {
            k: file[k] for k in ("owner", "group", "mode")
        }
        if file["secret"]:
            one.pop("diff", None)  # never shown: it holds passwords
        return one

    @staticmethod
    def _summary(written):
        failed = next((w for w in written if w.get("failed")), None)
        out = {
            "changed": any(w.get("changed") for w in written),
            "files": [
                {k: w[k] for k in ("dest", "path", "owner", "group", "mode")}
                | {"changed": bool(w.get("changed"))}
                for w in written
            ],
            "diff": [d for w in written for d in _diffs(w)],
        }
        if len(written) == 1:
            out["dest"] = written[0]["dest"]
        if failed:
            out |= {"failed": True, "msg": f"{failed['dest']}: {failed.get('msg', 'failed')}"}
            out |= {k: failed[k] for k in ("stdout", "stderr", "exit_status") if k in failed}
        return out
