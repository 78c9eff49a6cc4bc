"""CPU per request, and the throughput and latency a closed loop of clients gets from it.

On a CPU-bound stack, throughput is the cores divided by the CPU time one request costs
(its *service demand*), summed over every process that touches it (measured by
``webtier.ops.cpuprobe`` around a load-test level). This module

- **predicts** throughput and mean latency against concurrency from the calibrated
  demands (``webtier_cpu_demand`` in the inventory) and the cores each host has
  (``webtier_cpus``; hosts with one ``webtier_cpu_pool`` share theirs): mean-value
  analysis of a closed network (each connection is a client that sends its next request
  when the last is answered), a pool of c cores taken as Seidmann's approximation (a
  queue with demand D/c plus a delay of D(c-1)/c). Its throughput rises with the
  connections as Little's law says and levels at cores / demand of the busiest pool.

Neither engine needs this: ``webtier.ops.loadtest`` calibrates it and
``webtier.model.capacity`` prints its prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Names in a calibration that are not inventory hosts: the load generator (a client of
#: the stack, in the loop all the same) and machine CPU that no host accounts for.
LOADGEN, OTHER = "loadgen", "other"
#: CPUs a host is taken to have when the inventory does not say (``webtier_cpus``).
DEFAULT_CPUS = 2
#: The concurrency levels a load test sweeps and the model predicts.
LEVELS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)


# --- predicting --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """Cores that some hosts share, and the CPU one request costs there (seconds)."""

    name: str
    cores: int
    demand_s: float
    hosts: tuple[str, ...] = ()


def pools(demand_us: Mapping[str, float], hostvars: Mapping[str, Mapping[str, Any]]) -> list[Pool]:
    """The calibrated per-host demands grouped by the cores they share.

    A host's pool is its ``webtier_cpu_pool`` (default: the host alone) with
    ``webtier_cpus`` cores. ``loadgen`` and ``other`` (not inventory hosts) join the pool
    every host is in when they all share one (the sandbox: one machine), else each has a
    pool of its own."""
    named = {h: str(v.get("webtier_cpu_pool") or h) for h, v in hostvars.items()}
    shared = set(named.values())
    common = next(iter(shared)) if len(shared) == 1 else None
    grouped: dict[str, list[str]] = {}
    for host in demand_us:
        grouped.setdefault(named.get(host) or common or host, []).append(host)
    result = []
    for name, members in grouped.items():
        cpus = [
            int(hostvars[h].get("webtier_cpus") or DEFAULT_CPUS)
            for h in hostvars
            if named[h] == name
        ]
        result.append(
            Pool(
                name=name,
                cores=max(cpus, default=DEFAULT_CPUS),
                demand_s=sum(demand_us[h] for h in members) / 1e6,
                hosts=tuple(members),
            )
        )
    return result


def predict(
    levels: Sequence[int], stations: Sequence[Pool], delay_s: float = 0.0
) -> dict[int, dict[str, float]]:
    """Throughput (req/s) and mean latency (ms) at each number of connections.

    Exact mean-value analysis of a closed network with no think time, one customer per
    connection, on Seidmann's approximation of each multi-core pool; ``delay_s`` is the
    time a request waits on neither CPU (network round trips, I/O)."""
    queues = [(p.demand_s / p.cores) for p in stations]
    delay = delay_s + sum(p.demand_s * (p.cores - 1) / p.cores for p in stations)
    wanted = set(levels)
    backlog = [0.0] * len(queues)
    out: dict[int, dict[str, float]] = {}
    for n in range(1, max(levels, default=0) + 1):
        residence = [d * (1 + q) for d, q in zip(queues, backlog, strict=True)]
        response = delay + sum(residence)
        rate = n / response if response else 0.0
        backlog = [rate * r for r in residence]
        if n in wanted:
            out[n] = {"rps": round(rate, 1), "mean_ms": round(response * 1000, 2)}
    return out


def ceiling(stations: Sequence[Pool]) -> tuple[float, str]:
    """The highest throughput the pools allow, and the pool that sets it."""
    busiest = max(stations, key=lambda p: p.demand_s / p.cores)
    return (busiest.cores / busiest.demand_s if busiest.demand_s else float("inf")), busiest.name


def calibration(
    cpu: Mapping[str, Any], unloaded_ms: float, connections: int, when: str
) -> dict[str, Any]:
    """One endpoint's entry of ``webtier_cpu_demand`` from a measured level: each host's
    CPU per request and the delay (the unloaded latency less the CPU it holds)."""
    hosts = {h: v for h, v in cpu["hosts"].items() if v > 0}
    delay = max(unloaded_ms * 1000 - sum(hosts.values()), 0.0)
    return {
        "hosts_us": {h: round(v, 1) for h, v in sorted(hosts.items())},
        "delay_us": round(delay, 1),
        "calibrated": f"{when}, {connections} connections",
    }


def demand_of(hostvars: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The inventory's calibration, ``webtier_cpu_demand`` (group_vars/all: the same on
    every host that has it); empty when it has none."""
    return next(
        (v["webtier_cpu_demand"] for v in hostvars.values() if v.get("webtier_cpu_demand")), {}
    )


def for_endpoint(
    demand: Mapping[str, Any], hostvars: Mapping[str, Mapping[str, Any]], levels: Sequence[int]
) -> dict[str, Any]:
    """The prediction for one calibrated endpoint at each level, with its ceiling."""
    stations = pools(demand["hosts_us"], hostvars)
    top, pool = ceiling(stations)
    return {
        "levels": predict(levels, stations, demand.get("delay_us", 0.0) / 1e6),
        "ceiling_rps": round(top, 1),
        "bottleneck_pool": pool,
        "pools": [
            {
                "name": p.name,
                "cores": p.cores,
                "demand_us": round(p.demand_s * 1e6, 1),
                "hosts": list(p.hosts),
            }
            for p in stations
        ],
    }
