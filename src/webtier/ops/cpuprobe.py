"""What one request costs in CPU, measured per host around a load-test level: each
sandbox container's cgroup CPU accounting read on this machine (cgroup v1
``cpuacct.usage`` or v2 ``cpu.stat``), or a real host's systemd units
(``CPUUsageNSec``) read over SSH; and the machine's own busy time (``/proc/stat``), so
that CPU no container accounts for (the kernel's network path between containers) is
reported too. The model these figures calibrate: ``webtier.model.cpu``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webtier.model.cpu import OTHER

CGROUP = Path("/sys/fs/cgroup")


def cgroup_ns(container_id: str, root: Path = CGROUP) -> int:
    """CPU nanoseconds a container has used, from its cgroup on this machine (v1 or v2,
    Docker's cgroupfs or systemd driver)."""
    for path in (
        root / "cpuacct/docker" / container_id / "cpuacct.usage",
        root / "cpu,cpuacct/docker" / container_id / "cpuacct.usage",
        root / f"cpuacct/system.slice/docker-{container_id}.scope/cpuacct.usage",
    ):
        if path.exists():
            return int(path.read_text())
    for path in (
        root / "docker" / container_id / "cpu.stat",
        root / f"system.slice/docker-{container_id}.scope/cpu.stat",
    ):
        if path.exists():
            usage = dict(line.split() for line in path.read_text().splitlines())
            return int(usage["usage_usec"]) * 1000
    raise FileNotFoundError(f"no cgroup CPU accounting for container {container_id} under {root}")


def machine_busy_ns(stat: Path = Path("/proc/stat")) -> int:
    """CPU nanoseconds this machine spent busy (all CPUs: everything but idle and iowait)."""
    fields = [int(x) for x in stat.read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait
    return busy * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def systemd_ns(run: Callable[[Sequence[str]], str], units: Sequence[str]) -> int:
    """CPU nanoseconds a real host's units have used (systemd's CPU accounting), read
    through ``run`` (for example ``ssh HOST``)."""
    out = run(["systemctl", "show", "--property=CPUUsageNSec", "--value", *units])
    return sum(int(x) for x in out.split() if x.isdigit())


Reader = Callable[[], int]


@dataclass
class CpuProbe:
    """Reads every measured host's CPU counter, before and after a load-test level.

    ``readers`` maps a host (or ``loadgen``) to a function returning its CPU
    nanoseconds; ``machine`` (optional) reads the busy time of the one machine they all
    run on, which makes ``other`` (what no host accounts for) measurable."""

    readers: Mapping[str, Reader]
    machine: Reader | None = None
    _start: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        self._start = self._read()

    def _read(self) -> dict[str, int]:
        now = {name: read() for name, read in self.readers.items()}
        if self.machine:
            now["_machine"] = self.machine()
        return now

    def stop(self, requests: int) -> dict[str, Any]:
        """CPU microseconds per request since ``start``: per host, per tier-less total,
        and ``other`` when the machine's busy time is known."""
        end = self._read()
        if requests <= 0:  # nothing answered: no cost per request to speak of
            return {"hosts": {}, "total_us": None}
        spent = {name: end[name] - self._start[name] for name in end}
        per = {name: spent[name] / 1000 / requests for name in self.readers}
        result: dict[str, Any] = {"hosts": {n: round(v, 1) for n, v in per.items()}}
        if self.machine:
            machine = spent["_machine"] / 1000 / requests
            result["hosts"][OTHER] = round(max(machine - sum(per.values()), 0.0), 1)
            result["machine_us"] = round(machine, 1)
        result["total_us"] = round(sum(result["hosts"].values()), 1)
        return result


def sandbox_probe(containers: Mapping[str, str], docker: Sequence[str] = ("docker",)) -> CpuProbe:
    """A probe over sandbox containers (host name -> container name) on this machine."""
    readers: dict[str, Reader] = {}
    for host, name in containers.items():
        cid = subprocess.run(
            [*docker, "inspect", "--format", "{{.Id}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        cgroup_ns(cid)  # fails now, not in the middle of the sweep
        readers[host] = lambda cid=cid: cgroup_ns(cid)
    return CpuProbe(readers, machine=machine_busy_ns)
