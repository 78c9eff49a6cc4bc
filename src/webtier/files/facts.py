"""What a role reads from the host before it templates (``Facts``): read from the host by
a deploy (Ansible: kernel_tuning_effective and what the role read itself, pyinfra: the
same probes), or assumed from the inventory by the render command, which reaches no
host."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from webtier.files import firewall
from webtier.files.kernel import nofile_effective
from webtier.model.cpu import DEFAULT_CPUS
from webtier.model.inventory import role_defaults


@dataclass(frozen=True)
class Facts:
    """What a role reads from the host itself before it templates."""

    cpus: int
    #: The NOFILE hard limit of the service manager (PID 1); None: not capped by it.
    pid1_nofile_hard: int | None
    #: The NOFILE hard limit a service started now gets (kernel_tuning publishes it).
    nofile_hard: int
    in_container: bool
    memtotal_mb: int
    #: The address of the host's default route (Redis ``private`` binds), if known.
    ipv4: str | None
    #: Whether this uWSGI knows --max-requests-delta (2.0.22 and later).
    uwsgi_max_requests_delta: bool = True
    #: Debian's codename (what its packages spell differently, e.g. nginx's HTTP/2).
    release: str = "trixie"
    #: The app release the host runs (its ``current`` link), if any.
    running_release: str | None = None
    #: Whom the local Sentinel names primary ('host', 'port'), if it runs: it wins over
    #: the inventory (after a failover the inventory's primary is a replica).
    redis_sentinel_says: tuple[str, ...] = ()
    #: Addresses of the names the firewall admits, resolved on the host (None: keep
    #: the names, as the render command does: it reaches no host).
    resolved: Mapping[str, Sequence[str]] | None = None
    #: The verifier each database user is to have (postgresql.kept_verifiers of what the
    #: server stores), chosen once per run; None: not read (a render writes a placeholder).
    postgresql_verifiers: Mapping[str, str] | None = None

    def variables(self) -> dict[str, Any]:
        """The facts the roles' variables read (Ansible: set by a task, above role vars)."""
        return (
            {"__python_app_running_release": self.running_release} if self.running_release else {}
        )

    @classmethod
    def assumed(cls, hostvars: Mapping[str, Any]) -> Facts:
        """The facts of a host nobody asked, from its inventory: ``webtier_cpus`` (DEFAULT_CPUS),
        ``webtier_memory_mb`` (4096), ``webtier_release`` (trixie), a container when the
        connection is docker or ``kernel_tuning_host_kind`` says so, the address when
        ``ansible_host`` is one."""
        kind = hostvars.get("kernel_tuning_host_kind", "auto")
        connection = str(hostvars.get("ansible_connection", "ssh"))
        address = str(hostvars.get("ansible_host", ""))
        try:
            ipv4 = str(ipaddress.IPv4Address(address))
        except ValueError:
            ipv4 = None
        in_container = kind == "container" or (kind == "auto" and connection.endswith("docker"))
        kernel = {**role_defaults("kernel_tuning"), **hostvars}
        return cls(
            cpus=int(hostvars.get("webtier_cpus", DEFAULT_CPUS)),
            pid1_nofile_hard=None,
            nofile_hard=nofile_effective(
                kernel["kernel_tuning_nofile"], kernel["kernel_tuning_nr_open"], in_container, None
            ),
            in_container=in_container,
            memtotal_mb=int(hostvars.get("webtier_memory_mb", 4096)),
            ipv4=ipv4,
            release=str(hostvars.get("webtier_release", "trixie")),
        )

    @classmethod
    def read(
        cls,
        hostvars: Mapping[str, Any],
        effective: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Facts:
        """The facts a role read from the host under Ansible: ``effective``
        (kernel_tuning_effective: cpus, nofile_hard, in_container, memory_mb, release)
        and ``extra`` (what the role read itself, by field name: pid1_nofile_hard,
        ipv4, uwsgi_max_requests_delta, running_release, redis_sentinel_says, resolved,
        postgresql_verifiers,
        or ``getent``: name -> what ``getent ahostsv4 NAME`` printed, read into
        resolved); what neither gives is assumed from the inventory, as in a render."""
        given: dict[str, Any] = {}
        if effective:
            given = {
                "cpus": int(effective["cpus"]),
                "nofile_hard": int(effective["nofile_hard"]),
                "in_container": bool(effective["in_container"]),
                "memtotal_mb": int(effective["memory_mb"]),
                "release": str(effective["release"]),
            }
        extra = dict(extra or {})
        if "getent" in extra:  # name: what `getent ahostsv4 NAME` printed on the host
            extra["resolved"] = {
                name: firewall.addresses(name, text) for name, text in extra.pop("getent").items()
            }
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(extra) - fields)
        if unknown:
            raise ValueError(f"facts: no such fact {', '.join(unknown)} (known: {sorted(fields)})")
        for name, value in extra.items():
            if name == "redis_sentinel_says":
                value = tuple(value or ())  # noqa: PLW2901 (as the dataclass holds it)
            elif name == "pid1_nofile_hard":
                value = None if value in (None, "", "None") else int(value)  # noqa: PLW2901
            elif name in ("in_container", "uwsgi_max_requests_delta") and isinstance(value, str):
                value = value.lower() == "true"  # noqa: PLW2901 (a templated boolean's text)
            given[name] = value
        return replace(cls.assumed(hostvars), **given)


def listen_addresses(addresses: Sequence[str], ipv4: str | None) -> list[str]:
    """Listen addresses as an inventory gives them (redis_bind,
    postgresql_pgbouncer_listen), ``private`` replaced by the host's own address (kept
    as is when the address is unknown, as in a render)."""
    return [a.replace("private", ipv4 or "private") for a in addresses]
