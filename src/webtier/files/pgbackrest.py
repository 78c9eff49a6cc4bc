"""What the pgbackrest role derives: which side of pgBackRest a host is (a database host
whose server archives to a repository, or the repository host that takes the backups),
its stanzas, and which clients its TLS server admits. The postgresql role reads
:func:`archive` for its archive_command; the firewall reads :func:`peers`.

One stanza per database: a replicated set's stanza is named after its group
(postgresql_replication_group) and lists every host of the set, so the repository backs
up from a standby and follows a failover by itself (pgBackRest finds the primary); a
single server's stanza is named after the host. The repository is the first host of the
database host's ``pgbackrest_repository_group`` (``backups``); no such group, no backups.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from webtier import ROOT
from webtier.model.inventory import Groups, HostVars, role_defaults

#: The inventory group of the repository hosts (site.yml's backups play).
REPOSITORIES = "backups"
#: The group of the database hosts (site.yml's database play).
DATABASES = "databases"


@cache
def _versions() -> dict[str, int]:
    """PostgreSQL's major version by Debian release: the postgresql role's vars (one home)."""
    path = Path(ROOT) / "roles/postgresql/vars/main.yml"
    return {k: int(v) for k, v in yaml.safe_load(path.read_text())["__postgresql_versions"].items()}


def pgdata(release: str) -> str:
    """A database host's data directory (Debian's cluster, or pg_autoctl's there)."""
    return f"/var/lib/postgresql/{_versions()[release]}/main"


#: What the repository and the firewall read of another database host's variables.
DATABASE_INPUTS = ("postgresql_replication_group", "pgbackrest_repository_group")


def database_vars(host: str, hostvars: HostVars) -> dict[str, Any]:
    """A database host's variables as its two roles read them (their defaults under
    it): only DATABASE_INPUTS, each read alone (Ansible templates what is read)."""
    own = hostvars.get(host, {})
    merged = {**role_defaults("postgresql"), **role_defaults("pgbackrest")}
    return {k: own[k] if k in own else merged[k] for k in DATABASE_INPUTS}


def stanza_of(host: str, v: Mapping[str, Any]) -> str:
    """A database host's stanza: its replicated set's group, else its own name."""
    return str(v.get("postgresql_replication_group") or host)


def repository_of(host: str, v: Mapping[str, Any], groups: Groups) -> str | None:
    """The repository host of a database host (first of pgbackrest_repository_group),
    None when it has none (no such group, or the host is no database host)."""
    if host not in groups.get(DATABASES, ()):
        return None
    group = str(v.get("pgbackrest_repository_group") or "")
    members = list(groups.get(group, ())) if group else []
    return members[0] if members else None


def archive(host: str, v: Mapping[str, Any], groups: Groups) -> dict[str, str] | None:
    """The archive settings of a database host's server (postgresql's webtier.conf), None
    without a repository. Each segment goes to the repository as PostgreSQL completes it;
    archive_timeout bounds how old the newest archived change may be on a quiet server."""
    v = {**role_defaults("pgbackrest"), **v}  # the postgresql role's view lacks them
    if repository_of(host, v, groups) is None:
        return None
    stanza = stanza_of(host, v)
    return {
        "stanza": stanza,
        "command": f"pgbackrest --stanza={stanza} archive-push %p",
        "timeout": int(v["pgbackrest_archive_timeout"]),
    }


def stanzas(repository: str, groups: Groups, hostvars: HostVars, release: str) -> list[dict]:
    """The stanzas a repository keeps: every database host whose repository it is, by
    stanza, in inventory order. The hosts run the repository's PostgreSQL major version
    (its release's): the repository's restore check starts a restored copy with its own
    binaries, and a stanza's data directory is named by that version."""
    found: dict[str, list[str]] = {}
    for host in groups.get(DATABASES, ()):
        v = database_vars(host, hostvars)
        if repository_of(host, v, groups) == repository:
            found.setdefault(stanza_of(host, v), []).append(host)
    return [
        {"name": name, "hosts": hosts, "pgdata": pgdata(release), "standby": len(hosts) > 1}
        for name, hosts in found.items()
    ]


def peers(host: str, groups: Groups, hostvars: HostVars) -> list[str]:
    """The hosts whose pgBackRest connects to this host's TLS server: a repository's
    database hosts (archive-push, restore), a database host's repository (backups)."""
    if host in groups.get(REPOSITORIES, ()):
        return [
            h
            for h in groups.get(DATABASES, ())
            if repository_of(h, database_vars(h, hostvars), groups) == host
        ]
    repository = repository_of(host, database_vars(host, hostvars), groups)
    return [repository] if repository else []


def pgbackrest_derived(
    host: str, v: Mapping[str, Any], release: str, groups: Groups, hostvars: HostVars
) -> dict[str, Any]:
    """The pgbackrest role's plan for ``host``: its side (``repository``, ``database``
    or None: nothing to do), its stanzas and the clients its TLS server admits (each
    client's CN with the stanzas it may use)."""
    if host in groups.get(REPOSITORIES, ()):
        kept = stanzas(host, groups, hostvars, release)
        clients: dict[str, list[str]] = {}
        for stanza in kept:
            for member in stanza["hosts"]:
                clients.setdefault(member, []).append(stanza["name"])
        return {
            "__pgbackrest_side": "repository",
            "__pgbackrest_stanzas": kept,
            "__pgbackrest_clients": [{"name": n, "stanzas": s} for n, s in clients.items()],
            "__pgbackrest_repository": None,
        }
    repository = repository_of(host, v, groups)
    if repository is None:
        return {
            "__pgbackrest_side": None,
            "__pgbackrest_stanzas": [],
            "__pgbackrest_clients": [],
            "__pgbackrest_repository": None,
        }
    stanza = stanza_of(host, v)
    return {
        "__pgbackrest_side": "database",
        "__pgbackrest_stanzas": [
            {"name": stanza, "hosts": [host], "pgdata": pgdata(release), "standby": False}
        ],
        "__pgbackrest_clients": [{"name": repository, "stanzas": [stanza]}],
        "__pgbackrest_repository": repository,
    }
