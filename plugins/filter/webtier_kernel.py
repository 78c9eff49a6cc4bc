"""Thin Ansible wrappers: the NOFILE limit services get and the memory a host grants are
computed by the webtier package, with the same functions and the same probe the pyinfra
engine uses."""

from __future__ import annotations

from webtier.files.kernel import HOST_KIND_PROBE, MEMORY_PROBE, kernel_host
from webtier.model import derive


def webtier_kernel_host(probe_output, host_kind, nofile, nr_open):
    """What the host-kind probe printed: in_container, pid1_nofile_hard, nofile_effective."""
    return kernel_host(host_kind, probe_output, nofile, nr_open)


def webtier_host_probe(what):
    """The shell command that reads ``what`` on a host (``memory``: MEMORY_PROBE,
    ``kind``: HOST_KIND_PROBE)."""
    return {"memory": MEMORY_PROBE, "kind": HOST_KIND_PROBE}[what]


def webtier_granted_memory_mb(memtotal_kb, cgroup_limit):
    """The host's memory in MiB: MemTotal capped by its cgroup's limit."""
    return derive.granted_memory_mb(memtotal_kb, cgroup_limit)


class FilterModule:
    def filters(self):
        return {
            "webtier_kernel_host": webtier_kernel_host,
            "webtier_host_probe": webtier_host_probe,
            "webtier_granted_memory_mb": webtier_granted_memory_mb,
        }
