#!/usr/bin/python
"""Apply the sysctl drop-in rendered by the kernel_tuning role, container-aware."""

from __future__ import annotations

import os

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: kernel_tuning_sysctl
short_description: Apply sysctl settings from drop-in content, only where they may apply
description:
  - Parses C(key = value) lines (the content of a C(/etc/sysctl.d) drop-in) and
    writes each value whose live value under C(/proc/sys) differs.
  - With O(netns_only=true) (inside a container) only keys that belong to the
    container's network namespace are applied; global keys would change the host and
    are reported as left_to_host.
  - Supports check mode and diff mode.
options:
  content:
    description: Drop-in content, C(key = value) lines; C(#) and C(;) start comments.
    type: str
    required: true
  netns_only:
    description: Apply only the keys listed in O(netns_keys).
    type: bool
    default: false
  netns_keys:
    description: Keys that are per network namespace.
    type: list
    elements: str
    default: []
author: webtier
"""

RETURN = r"""
applied:
  description: Keys written (or that would be written in check mode).
  type: list
  returned: always
left_to_host:
  description: Keys left alone because they are global and O(netns_only) is set.
  type: list
  returned: always
effective:
  description: Live value of every key in the content that this host can see, after the run.
  type: dict
  returned: always
"""


def parse(content):
    """Return {key: value} from sysctl.d content, values with whitespace normalised."""
    settings = {}
    for lineno, raw in enumerate(content.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"line {lineno}: expected 'key = value', got {raw!r}")
        settings[key.strip().lstrip("-")] = " ".join(value.split())
    return settings


def proc_path(key):
    return os.path.join("/proc/sys", key.replace(".", "/"))


def read(key):
    with open(proc_path(key)) as stream:
        return " ".join(stream.read().split())


def main():
    module = AnsibleModule(
        argument_spec={
            "content": {"type": "str", "required": True},
            "netns_only": {"type": "bool", "default": False},
            "netns_keys": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        wanted = parse(module.params["content"])
    except ValueError as exc:
        module.fail_json(msg=f"cannot parse sysctl content: {exc}")

    netns = set(module.params["netns_keys"])
    left_to_host = [key for key in wanted if module.params["netns_only"] and key not in netns]
    todo = {key: value for key, value in wanted.items() if key not in left_to_host}

    unknown = sorted(key for key in todo if not os.path.exists(proc_path(key)))
    if unknown:
        module.fail_json(msg=f"unknown sysctl key(s) on this kernel: {', '.join(unknown)}")

    applied, before, after = [], {}, {}
    for key, value in todo.items():
        live = read(key)
        if live == value:
            continue
        applied.append(key)
        before[key], after[key] = live, value
        if not module.check_mode:
            try:
                with open(proc_path(key), "w") as stream:
                    stream.write(value)
            except OSError as exc:
                module.fail_json(msg=f"cannot set {key} = {value}: {exc}", applied=applied)
            if read(key) != value:
                module.fail_json(
                    msg=f"{key}: wrote {value!r} but the kernel reports {read(key)!r}",
                    applied=applied,
                )

    # Global keys outside the init network namespace are not even visible in a container.
    effective = {key: read(key) for key in wanted if os.path.exists(proc_path(key))}
    if module.check_mode:
        effective.update(after)

    def lines(values):
        return "".join(f"{key} = {value}\n" for key, value in sorted(values.items()))

    module.exit_json(
        changed=bool(applied),
        applied=applied,
        left_to_host=left_to_host,
        effective=effective,
        diff={
            "before": lines(before),
            "after": lines(after),
            "before_header": "/proc/sys",
            "after_header": "/proc/sys",
        },
    )


if __name__ == "__main__":
    main()
