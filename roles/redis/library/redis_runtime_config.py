"""Bring a running Redis/Valkey server in line with its new configuration file."""

from __future__ import annotations

import os
import shlex
import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: redis_runtime_config
short_description: Apply a changed Redis configuration file without a restart where possible
description:
  - Compares the directives of the previous configuration file (O(before)) with the
    file now at O(path) and applies every changed directive to the running server
    with C(CONFIG SET) (C(REPLICAOF) for C(replicaof)), then reloads the ACL file with
    C(ACL LOAD) when O(acl_changed) is set.
  - The server decides what it can change at run time. A directive it refuses
    (immutable ones such as C(tcp-backlog) or C(unixsocket)), a directive that was
    repeated, or a server that cannot be reached sets C(restart_required)
    so that the caller restarts it; nothing is restarted here.
  - Check mode reports the changes without applying them.
options:
  path:
    description: The configuration file now in place.
    type: path
    required: true
  before:
    description: Content of the configuration file before it was replaced.
    type: str
    default: ""
  acl_changed:
    description: Whether the ACL file was replaced (C(ACL LOAD) is sent).
    type: bool
    default: false
  cli:
    description: Command that reaches the server, e.g. C([redis-cli, -s, SOCK, --user, admin]).
    type: list
    elements: str
    required: true
  password:
    description: Password of the user in O(cli), passed in the environment (never argv).
    type: str
    default: ""
    no_log: true
author: webtier
"""

RETURN = r"""
changed_settings:
  description: Directives whose value differs, with the new value.
  type: dict
  returned: always
applied:
  description: Directives applied to the running server.
  type: list
  returned: always
restart_required:
  description: Whether the server must be restarted to take the new file.
  type: bool
  returned: always
reasons:
  description: Why a restart is required.
  type: list
  returned: always
"""

# Directives that describe how the file is loaded rather than a setting.
NOT_SETTINGS = {"include", "user", "rename-command", "loadmodule"}


def parse(text):
    """Return {directive: [arguments, ...] per occurrence} from a Redis config file."""
    settings = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        settings.setdefault(words[0].lower(), []).append(words[1:])
    return settings


def changes(before, after):
    """(changed {directive: args}, reasons a restart is needed) between two files."""
    old, new = parse(before), parse(after)
    changed, reasons = {}, []
    for name, occurrences in new.items():
        if old.get(name) == occurrences:
            continue
        if name in NOT_SETTINGS or len(occurrences) > 1:
            reasons.append(f"{name}: changed, and it can only be read at start")
            continue
        changed[name] = occurrences[0]
    # A directive only in the old file was either dropped from the template or added by
    # the server itself (CONFIG REWRITE after a Sentinel failover): the running value
    # is left alone, except a replicaof that is gone: this server is a primary now.
    if "replicaof" in old and "replicaof" not in new:
        changed["replicaof"] = ["no", "one"]
    return changed, reasons


class Server:
    def __init__(self, module):
        self.module = module
        self.cli = module.params["cli"]
        self.env = dict(os.environ)
        if module.params["password"]:
            self.env["REDISCLI_AUTH"] = module.params["password"]

    def call(self, *args):
        """(ok, reply) of one command; errors come back as reply text."""
        proc = subprocess.run(
            [*self.cli, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
            check=False,
        )
        reply = (proc.stdout + proc.stderr).strip()
        failed = proc.returncode != 0 or reply.startswith(("ERR", "NOAUTH", "WRONGPASS", "NOPERM"))
        failed = failed or "Could not connect" in reply or "(error)" in reply
        return not failed, reply


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "before": {"type": "str", "default": ""},
            "acl_changed": {"type": "bool", "default": False},
            "cli": {"type": "list", "elements": "str", "required": True},
            "password": {"type": "str", "default": "", "no_log": True},
        },
        supports_check_mode=True,
    )
    with open(module.params["path"]) as stream:
        after = stream.read()
    changed, reasons = changes(module.params["before"], after)
    result = {
        "changed_settings": {name: " ".join(args) for name, args in changed.items()},
        "applied": [],
        "restart_required": bool(reasons),
        "reasons": reasons,
    }
    wanted = bool(changed) or module.params["acl_changed"]
    if module.check_mode or not wanted:
        module.exit_json(changed=wanted, **result)

    server = Server(module)
    ok, reply = server.call("PING")
    if not ok:
        result["reasons"].append(f"server not reachable with the admin credentials ({reply})")
        result["restart_required"] = True
        module.exit_json(changed=True, **result)

    if module.params["acl_changed"]:
        ok, reply = server.call("ACL", "LOAD")
        if ok:
            result["applied"].append("aclfile (ACL LOAD)")
        else:
            result["reasons"].append(f"ACL LOAD refused: {reply}")

    for name, args in changed.items():
        if name in ("replicaof", "slaveof"):
            ok, reply = server.call("REPLICAOF", *args)
        else:
            ok, reply = server.call("CONFIG", "SET", name, " ".join(args))
        if ok:
            result["applied"].append(name)
        else:
            result["reasons"].append(f"{name}: {reply}")

    result["restart_required"] = bool(result["reasons"])
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
