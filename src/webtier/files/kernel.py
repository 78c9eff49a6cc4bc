"""What the kernel_tuning role reads from a host and derives: whether it is a container,
its memory, the NOFILE limit services can get there (both engines run the probes)."""

from __future__ import annotations

from typing import Any

#: Prints what a host's memory is: MemTotal (kB), then the lowest memory limit of the
#: cgroups above PID 1 (bytes, or ``max``). A container's limit is on its own cgroup,
#: which PID 1 (systemd) may have left for a child (init.scope): the walk goes up to the
#: root. Both engines run it and hand the two lines to ``derive.granted_memory_mb``.
#: No ``${...}`` in it: systemd-run (the kernel_tuning probe) expands that form itself.
MEMORY_PROBE = (
    "awk '/^MemTotal:/ {print $2}' /proc/meminfo; "
    "c=$(sed -n 's/^[0-9]*:memory:\\(.*\\)$/\\1/p' /proc/1/cgroup); "
    "b=/sys/fs/cgroup/memory; f=memory.limit_in_bytes; "
    "[ -n \"$c\" ] || { c=$(sed -n 's/^0::\\(.*\\)$/\\1/p' /proc/1/cgroup); "
    "b=/sys/fs/cgroup; f=memory.max; }; "
    'm=max; while :; do v=$(cat "$b$c/$f" 2>/dev/null) || v=max; '
    'case $v in *[!0-9]*|\'\') ;; *) [ "$m" = max ] || [ "$v" -lt "$m" ] && m=$v ;; esac; '
    "case $c in ''|/) break ;; esac; c=$(dirname \"$c\"); done; echo $m"
)


#: Prints what a host is before the kernel_tuning role changes it: the container it runs
#: in (systemd-detect-virt: ``none`` on a machine), then its service manager's NOFILE
#: hard limit. Both engines run it and read it with ``host_kind``.
HOST_KIND_PROBE = (
    "systemd-detect-virt --container || true; awk '/^Max open files/ {print $5}' /proc/1/limits"
)


def kernel_host(kind: str, probe_output: str, nofile: int, nr_open: int) -> dict[str, Any]:
    """What HOST_KIND_PROBE printed, read with ``kernel_tuning_host_kind``: whether the
    host is a container, its service manager's NOFILE hard limit (None: unlimited) and
    the NOFILE limit the kernel_tuning role can give services there."""
    virt, pid1_text = [*probe_output.split(), "", ""][:2]
    in_container = kind == "container" or (kind == "auto" and virt not in ("", "none"))
    pid1 = None if pid1_text in ("", "unlimited") else int(pid1_text)
    return {
        "in_container": in_container,
        "pid1_nofile_hard": pid1,
        "nofile_effective": nofile_effective(int(nofile), int(nr_open), in_container, pid1),
    }


def nofile_effective(nofile: int, nr_open: int, in_container: bool, pid1_hard: int | None) -> int:
    """The NOFILE limit services really get: what was asked, capped by what the host can
    grant (inside a container the service manager's own hard limit, else fs.nr_open)."""
    ceiling = pid1_hard if in_container and pid1_hard is not None else nr_open
    return min(int(nofile), int(ceiling))
