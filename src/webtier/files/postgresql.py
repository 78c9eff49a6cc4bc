"""What the postgresql role derives: its version, memory settings, the users' SCRAM
verifiers, PgBouncer's limits, and which PgBouncer settings need a restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from webtier.files.facts import listen_addresses
from webtier.model import derive

#: PBKDF2 rounds of the SCRAM verifiers (PostgreSQL's own default, scram_iterations).
SCRAM_ITERATIONS = 4096
#: PBKDF2 rounds of the salt's own derivation: what a guess at the password costs an
#: attacker who holds the verifier (32 times a verifier's own rounds).
SALT_ITERATIONS = 32 * SCRAM_ITERATIONS


@cache  # the salt's PBKDF2 takes 70 ms, and every render of the role asks again
def scram_verifier(user: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` (RFC 5802/7677) as PostgreSQL stores it
    and PgBouncer's auth_file takes it: ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:
    <ServerKey>``. The database and PgBouncer hold the same verifier, so PgBouncer logs
    in to the server with the keys of the client's own SCRAM exchange, and no plaintext
    password is on the host. The salt is derived from the user and the password, not
    random: each run and both engines write the same verifier (no change to report), a
    password change changes the salt, and every host of a database holds the same one
    (PgBouncer logs in with the keys of the salt the server keeps). The derivation is a
    PBKDF2 of SALT_ITERATIONS rounds, so that a guess checked against the salt costs
    more than one checked against the verifier itself (a plain hash would let a guess be
    checked with one SHA-256). Still deterministic: the same user and password give the
    same verifier in every environment (see the README, "Security"). (hashlib, hmac:
    the standard library has every primitive; no SCRAM package is needed for a few
    lines.)"""
    salt = hashlib.pbkdf2_hmac(
        "sha256", str(password).encode(), f"webtier-scram-salt:{user}".encode(), SALT_ITERATIONS
    )[:16]
    salted = hashlib.pbkdf2_hmac("sha256", str(password).encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def postgresql_users(databases: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each database's user and the verifier of its password (PgBouncer's auth_file and
    the role's password in the server)."""
    return [
        {"name": d["user"], "verifier": scram_verifier(str(d["user"]), str(d["password"]))}
        for d in databases
    ]


def postgresql_derived(
    v: Mapping[str, Any], release: str, memtotal_mb: int, ipv4: str | None = None
) -> dict[str, Any]:
    """The PostgreSQL role's version (by Debian release), memory settings, users'
    verifiers, PgBouncer's listen addresses (``private``: ``ipv4``), server connections
    and descriptor limit."""
    databases = v["postgresql_databases"]
    servers = derive.pgbouncer_server_connections(
        len(databases),
        v["postgresql_pgbouncer_default_pool_size"],
        v["postgresql_pgbouncer_reserve_pool_size"],
    )
    return {
        "__postgresql_version": v["__postgresql_versions"][release],
        "__postgresql_memory": derive.postgresql_memory(
            v["postgresql_shared_buffers"],
            v["postgresql_effective_cache_size"],
            v["postgresql_maintenance_work_mem"],
            memtotal_mb,
            v.get("webtier_memory_mb"),
        ),
        "__postgresql_users": postgresql_users(databases),
        "__postgresql_pgbouncer_listen": listen_addresses(v["postgresql_pgbouncer_listen"], ipv4),
        "__postgresql_pgbouncer_nofile": derive.pgbouncer_nofile(
            v["postgresql_pgbouncer_max_client_conn"], servers
        ),
    }


#: What PgBouncer reads only at start: its listeners (a reload keeps the old ones).
PGBOUNCER_LISTENERS = re.compile(r"(?m)^(?:listen_\w+|unix_socket_dir)[ \t]*=.*$")


def pgbouncer_listeners(ini: str) -> list[str]:
    """The lines of a pgbouncer.ini that only a restart applies (both engines restart
    PgBouncer when these differ between the live file and the new one)."""
    return [line.strip() for line in PGBOUNCER_LISTENERS.findall(ini)]
