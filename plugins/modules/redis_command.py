"""Send one command to a Redis/Valkey server or Sentinel and return its reply."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webtier.stack.plugins.module_utils.webtier_redis import (
    CONNECTION_ARGS,
    call,
    connect,
)

DOCUMENTATION = r"""
---
module: redis_command
short_description: One command to a Redis/Valkey server or Sentinel, no password in any argv
description:
  - Connects over O(socket) or O(host):O(port), authenticates as O(user) with
    O(password) when one is given, sends O(command) and returns the reply.
  - No process is started on the host, so the password is in no argv and no
    environment there (see plugins/module_utils/webtier_redis.py).
  - The module never reports a change; the caller decides with C(changed_when).
options:
  command:
    description: The command and its arguments, e.g. C([SENTINEL, MASTER, mymaster]).
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - webtier.stack.redis_connection
author: webtier
"""

RETURN = r"""
reply:
  description: The reply (a list for an array reply); the error text when it failed.
  type: raw
  returned: always
lines:
  description: A list reply's items, the way C(redis-cli) prints them one per line.
  type: list
  returned: always
"""


def main():
    module = AnsibleModule(
        argument_spec={
            "command": {"type": "list", "elements": "str", "required": True},
            **CONNECTION_ARGS,
        },
        supports_check_mode=True,
    )
    ok, reply = call(connect(module), *module.params["command"])
    if not ok:
        module.fail_json(msg=reply)
    if isinstance(reply, list):
        lines = [str(item) for item in reply]
    else:  # nil (an unknown Sentinel master) prints nothing in redis-cli: no line
        lines = [] if reply is None else [str(reply)]
    module.exit_json(changed=False, reply=reply, lines=lines)


if __name__ == "__main__":
    main()
