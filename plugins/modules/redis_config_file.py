"""Put a checked Redis/Valkey configuration file live when what it says differs."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webtier.stack.plugins.module_utils.webtier_redis import parse

DOCUMENTATION = r"""
---
module: redis_config_file
short_description: Replace a Redis configuration file only when its directives differ
description:
  - Compares the directives of the candidate file O(src) (rendered and checked by the
    template task before) with the live file O(dest), as the server reads them;
    comments, blank lines and quoting do not count.
  - Sentinel rewrites the live file at a failover (C(CONFIG REWRITE)) in its own format;
    a file that says the same is left as it is, so a run after a failover changes
    nothing.
  - When they differ, keeps a backup of the live file (RV(backup_file), read by
    redis_runtime_config) and moves the candidate over it. The candidate is removed
    either way.
options:
  src:
    description: The candidate file, on the host, in the directory of O(dest).
    type: path
    required: true
  dest:
    description: The live configuration file.
    type: path
    required: true
extends_documentation_fragment: [files]
author: webtier
"""

RETURN = r"""
backup_file:
  description: The copy of the previous live file, when it was replaced.
  type: str
  returned: changed
"""


def main():
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
        },
        add_file_common_args=True,
        supports_check_mode=True,
    )
    src, dest = module.params["src"], module.params["dest"]
    with open(src) as stream:
        wanted = stream.read()
    live = None
    if os.path.exists(dest):
        with open(dest) as stream:
            live = stream.read()
    result = {}
    differs = live is None or parse(live) != parse(wanted)
    if differs and not module.check_mode:
        if live is not None:
            result["backup_file"] = module.backup_local(dest)
        module.atomic_move(src, dest)
    elif os.path.exists(src):
        os.unlink(src)
    changed = differs
    if os.path.exists(dest):  # not yet in check mode on a new host
        attributes = module.load_file_common_arguments(module.params, path=dest)
        changed = module.set_fs_attributes_if_different(attributes, differs)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
