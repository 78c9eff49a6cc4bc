"""pgBackRest (the pgbackrest role): each stanza archives to its repository, its first
full backup is there, encrypted (the set's taken from its standby), its timers are
scheduled, and only the two sides reach each other's TLS server.

The repositories: pgmon (Debian 13, also the set's monitor) keeps stanza pgset (pga and
pgb); pgrepo12 (Debian 12) keeps stanza db12. (test_ files run in name order: this one
before the failover's.)"""

from __future__ import annotations

import json

import pytest
from conftest import wait_for

#: Each repository host, the stanza it keeps and that stanza's database hosts.
STANZAS = {"pgmon": ("pgset", ["pga", "pgb"]), "pgrepo12": ("db12", ["db12"])}
REPOSITORY = "/var/lib/pgbackrest"


def pgbackrest(host, *args: str) -> str:
    return host.check_output(f"runuser -u postgres -- pgbackrest {' '.join(args)}")


def backups(host, stanza: str) -> list[dict]:
    """The stanza's backups as the repository lists them (pgbackrest info)."""
    info = json.loads(pgbackrest(host, f"--stanza={stanza}", "--output=json", "info"))
    return info[0]["backup"]


def first_backup_done(host, stanza: str) -> bool:
    state = host.check_output(
        f"systemctl show -p ActiveState -p Result --value pgbackrest-full@{stanza}.service"
    ).split()
    # (systemctl prints the values in the unit's order of properties, not the asked one)
    return set(state) == {"inactive", "success"} and bool(backups(host, stanza))


@pytest.mark.parametrize("repository", sorted(STANZAS))
def test_each_stanza_archives_to_its_repository(instances, repository):
    """pgBackRest's own check: it switches the primary to a new WAL segment and waits
    for the segment in the repository (both sides' configuration, TLS and archiving)."""
    stanza, _ = STANZAS[repository]
    pgbackrest(instances[repository], f"--stanza={stanza}", "check")


@pytest.mark.parametrize("repository", sorted(STANZAS))
def test_the_first_full_backup_is_in_the_repository_encrypted(instances, repository):
    host = instances[repository]
    stanza, _ = STANZAS[repository]
    assert wait_for(lambda: first_backup_done(host, stanza), 240), host.check_output(
        f"journalctl -u pgbackrest-full@{stanza}.service --no-pager -o cat | tail -n 20"
    )
    (full,) = [b for b in backups(host, stanza) if b["type"] == "full"][:1]
    assert full["error"] is False
    info = json.loads(pgbackrest(host, f"--stanza={stanza}", "--output=json", "info"))
    assert info[0]["cipher"] == "aes-256-cbc"
    # the files themselves: OpenSSL's salted format, never PostgreSQL's pages in clear
    head = host.check_output(f"head -c 8 {REPOSITORY}/backup/{stanza}/backup.info")
    assert head == "Salted__"


def test_the_sets_backup_reads_its_files_from_the_standby(instances):
    log = instances["pgmon"].check_output(
        "journalctl -u pgbackrest-full@pgset.service --no-pager -o cat"
    )
    assert "wait for replay on the standby" in log, log[-3000:]


@pytest.mark.parametrize("repository", sorted(STANZAS))
def test_full_and_differential_backups_are_scheduled(instances, repository):
    host = instances[repository]
    stanza, _ = STANZAS[repository]
    for kind in ("full", "diff"):
        timer = host.service(f"pgbackrest-{kind}@{stanza}.timer")
        assert timer.is_enabled
        assert timer.is_running
        following = host.check_output(
            f"systemctl show -p NextElapseUSecRealtime --value pgbackrest-{kind}@{stanza}.timer"
        )
        assert following not in ("", "n/a"), (kind, following)


def test_only_the_two_sides_reach_each_others_tls_server(instances):
    """8432: a database host from its repository, a repository from its own database
    hosts; a host of another stanza reaches neither."""
    probe = "timeout 3 bash -c '</dev/tcp/{}/8432'"
    for repository, (_, members) in STANZAS.items():
        for member in members:
            assert instances[repository].run(probe.format(member)).rc == 0, (repository, member)
            assert instances[member].run(probe.format(repository)).rc == 0, (member, repository)
    assert instances["db12"].run(probe.format("pgmon")).rc != 0
    assert instances["pgrepo12"].run(probe.format("pga")).rc != 0
    assert instances["pga"].run(probe.format("pgrepo12")).rc != 0
