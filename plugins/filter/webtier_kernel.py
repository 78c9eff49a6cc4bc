"""Thin Ansible wrappers: the NOFILE limit services get and the memory a host grants are
computed by the webtier package, with the same functions and the same probe the pyinfra
engine uses."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from webtier import configs, derive


def webtier_nofile_effective(nofile, nr_open, in_container, pid1_hard):
    """kernel_tuning_nofile capped by what the host can grant ('unlimited': no cap)."""
    pid1 = None if str(pid1_hard) == "unlimited" else int(pid1_hard)
    return configs.nofile_effective(
        int(nofile), int(nr_open), boolean(in_container, strict=True), pid1
    )


def webtier_host_probe(what):
    """The shell command that reads ``what`` on a host (``memory``: configs.MEMORY_PROBE)."""
    return {"memory": configs.MEMORY_PROBE}[what]


def webtier_granted_memory_mb(memtotal_kb, cgroup_limit):
    """The host's memory in MiB: MemTotal capped by its cgroup's limit."""
    return derive.granted_memory_mb(memtotal_kb, cgroup_limit)


class FilterModule:
    def filters(self):
        return {
            "webtier_nofile_effective": webtier_nofile_effective,
            "webtier_host_probe": webtier_host_probe,
            "webtier_granted_memory_mb": webtier_granted_memory_mb,
        }
