"""Bring a running Redis/Valkey server in line with its new configuration file."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webtier.stack.plugins.module_utils.webtier_redis import (
    CONNECTION_ARGS,
    call,
    connect,
    parse,
)

DOCUMENTATION = r"""
---
module: redis_runtime_config
short_description: Apply a changed Redis configuration file without a restart where possible
description:
  - Compares the directives of the previous configuration file (O(before_path), the
    template task's backup, removed here once read) with the file now at O(path) and
    applies every changed directive to the running server
    with C(CONFIG SET) (C(REPLICAOF) for C(replicaof)), then reloads the ACL file with
    C(ACL LOAD) when O(acl_changed) is set.
  - The server decides what it can change at run time. A directive it refuses
    (immutable ones such as C(tcp-backlog) or C(unixsocket)), a directive that was
    repeated, or a server that cannot be reached sets C(restart_required)
    so that the caller restarts it; nothing is restarted here.
  - Check mode reports the changes without applying them.
  - Secrets stay on the host. The old file is read there (not passed in), values go to
    the server over its socket (no C(redis-cli) argv), and the values of C(masterauth)
    and C(requirepass) are masked in what the module returns.
options:
  path:
    description: The configuration file now in place.
    type: path
    required: true
  before_path:
    description: Copy of the configuration file before it was replaced (removed once
      read); empty when the file did not change.
    type: path
  acl_changed:
    description: Whether the ACL file was replaced (C(ACL LOAD) is sent).
    type: bool
    default: false
  user:
    description: ACL user with the rights to C(CONFIG SET) and C(ACL LOAD).
extends_documentation_fragment:
  - webtier.stack.redis_connection
author: webtier
"""

RETURN = r"""
changed_settings:
  description: Directives whose value differs, with the new value (secrets masked).
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
# Directives given once per rule in the file (as CONFIG REWRITE writes them), whose
# rules CONFIG SET takes together in one value.
PER_RULE = {"save"}
# Directives whose value is a password: applied, never returned.
SECRETS = {"masterauth", "requirepass"}


def changes(before, after):
    """(changed {directive: args}, reasons a restart is needed) between two files."""
    old, new = parse(before), parse(after)
    changed, reasons = {}, []
    for name, occurrences in new.items():
        if old.get(name) == occurrences:
            continue
        if name in PER_RULE:
            changed[name] = [" ".join(word for rule in occurrences for word in rule)]
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


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "before_path": {"type": "path"},
            "acl_changed": {"type": "bool", "default": False},
            **CONNECTION_ARGS,
        },
        supports_check_mode=True,
    )
    with open(module.params["path"]) as stream:
        after = stream.read()
    before = after
    if module.params["before_path"]:
        with open(module.params["before_path"]) as stream:
            before = stream.read()
        if not module.check_mode:
            os.unlink(module.params["before_path"])
    changed, reasons = changes(before, after)
    result = {
        "changed_settings": {
            name: "********" if name in SECRETS else " ".join(args)
            for name, args in changed.items()
        },
        "applied": [],
        "restart_required": bool(reasons),
        "reasons": reasons,
    }
    wanted = bool(changed) or module.params["acl_changed"]
    if module.check_mode or not wanted:
        module.exit_json(changed=wanted, **result)

    server = connect(module)
    ok, reply = call(server, "PING")
    if not ok:
        result["reasons"].append(f"server not reachable with the admin credentials ({reply})")
        result["restart_required"] = True
        module.exit_json(changed=True, **result)

    if module.params["acl_changed"]:
        ok, reply = call(server, "ACL", "LOAD")
        if ok:
            result["applied"].append("aclfile (ACL LOAD)")
        else:
            result["reasons"].append(f"ACL LOAD refused: {reply}")

    for name, args in changed.items():
        if name in ("replicaof", "slaveof"):
            ok, reply = call(server, "REPLICAOF", *args)
        else:
            ok, reply = call(server, "CONFIG", "SET", name, " ".join(args))
        if ok:
            result["applied"].append(name)
        else:
            result["reasons"].append(f"{name}: {reply}")

    result["restart_required"] = bool(result["reasons"])
    module.exit_json(changed=True, **result)


if __name__ == "__main__":
    main()
