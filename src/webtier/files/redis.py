"""What the redis role derives: its paths and units, bind addresses, whom it replicates
(Sentinel's answer first), the ACL file's password hashes and each app user's rules."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from webtier.files.facts import Facts, listen_addresses
from webtier.model import derive
from webtier.model.access import redis_app_rules
from webtier.model.inventory import Groups, HostVars


def password_hash(password: str) -> str:
    """The SHA-256 hex digest Redis' ACL files take (``#<hash>``)."""
    return hashlib.sha256(str(password).encode()).hexdigest()


def redis_password_hashes(passwords: Mapping[str, str]) -> dict[str, str]:
    """The ACL file's hash of each user's password, by user kind."""
    return {kind: password_hash(password) for kind, password in passwords.items()}


def app_acls(users: list[Mapping[str, Any]], commands: str) -> list[dict[str, str]]:
    """The ACL file's line of each app user: its name, its password's hash, its rules
    (webtier.model.access.redis_app_rules)."""
    return [
        {
            "name": str(user["name"]),
            "hash": password_hash(user.get("password") or ""),
            "rules": redis_app_rules(dict(user), commands),
        }
        for user in users
    ]


def redis_primary(  # noqa: PLR0913, PLR0917 (the host's three values, the inventory, Sentinel)
    group: str,
    port: int,
    announce_host: str,
    groups: Groups,
    hostvars: HostVars,
    sentinel_says: list[str] | None = None,
) -> tuple[str, str]:
    """(whom this Redis replicates: 'host port', or '' on the primary; the primary's host
    as the inventory names it). Sentinel's answer, when there is one, wins over the
    inventory: after a failover the inventory's primary is a replica, and rendering it
    as the primary would undo the failover."""
    members = [hostvars[m] for m in groups[group] if m in hostvars]
    primary = next((m for m in members if m.get("redis_replication_role") == "primary"), None)
    if primary is None:
        raise ValueError(
            f"redis_replication_group={group}: no host of it has redis_replication_role=primary"
        )
    host = redis_address(primary["inventory_hostname"], primary)
    if sentinel_says and len(sentinel_says) == 2:
        address = " ".join(sentinel_says)
    else:
        address = f"{host} {primary.get('redis_port', port)}"
    return ("" if address.split()[0] == announce_host else address), host


def redis_address(host: str, hv: Mapping[str, Any]) -> str:
    """The name others reach a Redis host by: the one it announces (Sentinel, replicas),
    else its ansible_host, else its inventory name."""
    return str(hv.get("redis_announce_host", hv.get("ansible_host", host)))


def redis_derived(
    v: Mapping[str, Any],
    facts: Facts,
    groups: Groups,
    hostvars: HostVars,
) -> dict[str, Any]:
    """The Redis role's paths, units, addresses, primary and ACL password hashes."""
    paths = v["__redis_engines"][v["redis_engine"]]
    out: dict[str, Any] = {
        "__redis_paths": paths,
        "__redis_units": [paths["service"]]
        + ([paths["sentinel_service"]] if v["redis_sentinel"] else []),
        "__redis_in_container": facts.in_container,
        "__redis_nofile": derive.redis_nofile(v["redis_maxclients"]),
        "__redis_maxmemory": derive.redis_maxmemory(v["redis_maxmemory"], facts.memtotal_mb),
        "__redis_bind_addresses": listen_addresses(v["redis_bind"], facts.ipv4),
        "__redis_password_hashes": redis_password_hashes(
            {
                "admin": v["redis_admin_password"],
                "replication": v["redis_replication_password"],
                "sentinel": v["redis_sentinel_auth_password"],
            }
        ),
        "__redis_app_acls": app_acls(v["redis_app_users"], v["redis_app_commands"]),
    }
    if v["redis_replication_group"]:
        replicaof, seed = redis_primary(
            v["redis_replication_group"],
            v["redis_port"],
            v["redis_announce_host"],
            groups,
            hostvars,
            list(facts.redis_sentinel_says),
        )
        out |= {"__redis_replicaof": replicaof, "__redis_sentinel_seed_primary": seed}
    return out
