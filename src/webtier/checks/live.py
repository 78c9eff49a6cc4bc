"""What only the host itself can tell, checked on the facts read from it before any change.

Preflight judges the inventory's plan on the controller. A role about to change a host
runs :func:`check` on what that host really grants: the kernel's listen-queue cap and
the NOFILE limit a service started now gets (a container may not be able to raise
them), its CPUs (``auto`` sizes) and its Debian release (what it packages). The same
function judges the role's own variables against the model first, so a role used
alone, without the preflight play, refuses what preflight would.

Both engines call it: the roles' ``validate.yml`` gather the facts and hand them to the
``webtier_check`` action (plugins/action/), pyinfra_deploy/deploy.py reads the same facts
with pyinfra's own and calls it before it queues an operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webtier.checks import invariants
from webtier.model import capacity, schema
from webtier.model.inventory import with_defaults

#: The Debian releases that package each Redis engine (Valkey arrived in trixie).
from webtier.model.schema import Finding

ENGINE_RELEASES = {"redis": ("bookworm", "trixie"), "valkey": ("trixie",)}


@dataclass(frozen=True)
class HostFacts:
    """What a role reads from the host before it changes anything."""

    kernel: capacity.Kernel
    #: Debian's codename (bookworm, trixie).
    release: str
    #: vm.overcommit_memory, where Redis runs (it asks for 1); None: not read.
    overcommit_memory: int | None = None
    in_container: bool = False

    @classmethod
    def read(cls, effective: Mapping[str, Any]) -> HostFacts:
        """From what kernel_tuning publishes (``kernel_tuning_effective``)."""
        return cls(
            capacity.Kernel(
                int(effective["somaxconn"]),
                int(effective["tcp_max_syn_backlog"]),
                int(effective["nofile_hard"]),
                int(effective["cpus"]),
            ),
            str(effective["release"]),
            int(effective["overcommit_memory"]),
            str(effective["in_container"]).lower() in ("true", "1"),
        )


def check(
    host: str,
    roles: Sequence[str],
    values: Mapping[str, Any],
    facts: HostFacts | None,
    peers: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Finding]:
    """Every mistake of ``roles`` on ``host``: ``values`` (the roles' variables as the
    host resolves them) against the model, then against what the host grants (without
    ``facts``, before anything was read from it: the model only). ``peers``, the
    variables of every host of its replicated Redis set by name, adds the rules of that
    set (:func:`webtier.checks.invariants.replication`)."""
    merged = with_defaults(roles, values)
    found = [f for role in roles for f in schema.findings(host, role, merged)]
    found += invariants.interface(host, roles, merged)
    if found or facts is None:  # below: the same values, so type errors would only repeat
        return found
    found += capacity.on_host(host, merged, roles, facts.kernel)
    if "redis" in roles and peers is not None:
        members = {merged["redis_replication_group"]: list(peers)}
        found += invariants.replication(host, merged, {**peers, host: merged}, members)
    engine = merged.get("redis_engine")
    if "redis" in roles and facts.release not in ENGINE_RELEASES[engine]:
        found.append(
            Finding(
                host,
                "redis_engine",
                engine,
                f"what Debian {facts.release} packages ({engine} is packaged for "
                f"{', '.join(ENGINE_RELEASES[engine])})",
                "use redis_engine: redis here",
            )
        )
    return found


def notes(
    host: str, roles: Sequence[str], values: Mapping[str, Any], facts: HostFacts | None
) -> list[str]:
    """What works but deserves a word: settings a server ignores, kernel modes it warns
    about. Both engines print these as warnings."""
    said = []
    kind = values.get("gunicorn_worker_class")
    conns = values.get("gunicorn_worker_connections", "auto")
    if "gunicorn" in roles and conns != "auto" and kind in ("sync", "asgi"):
        said.append(
            f"{host}: gunicorn_worker_connections={conns} is ignored by {kind} workers "
            f"({'one request per process' if kind == 'sync' else 'uvicorn does not read it'})"
        )
    if "redis" in roles and facts and facts.overcommit_memory not in (None, 1):
        where = " and on the container host" if facts.in_container else ""
        said.append(
            f"{host}: vm.overcommit_memory={facts.overcommit_memory}; Redis asks for 1 "
            "(background saves and replication fork) and logs a warning at start. Set "
            f'{{"vm.overcommit_memory": 1}} in kernel_tuning_dependent_sysctl{where}.'
        )
    return said


def report(findings: Sequence[Finding]) -> str:
    lines = [f"{len(findings)} problem(s) on this host; nothing was changed:"]
    return "\n".join(lines + [f"- {f}" for f in findings])
