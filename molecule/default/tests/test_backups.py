"""pgBackRest converged by pyinfra (molecule/pyinfra: db1 and its repository backup1;
the database scenario covers the Ansible path): db1 archives to backup1, whose first
full backup of stanza db1 is there, encrypted, and whose timers are scheduled."""

from __future__ import annotations

import json
import time

import pytest


@pytest.fixture(scope="module")
def repository(instances):
    if "backup1" not in instances:
        pytest.skip("no backup repository in this scenario (molecule/pyinfra has one)")
    return instances["backup1"]


def pgbackrest(host, *args: str) -> str:
    return host.check_output(f"runuser -u postgres -- pgbackrest --stanza=db1 {' '.join(args)}")


def test_db1_archives_to_its_repository_and_has_a_first_backup(repository):
    pgbackrest(repository, "check")  # a new WAL segment, waited for in the repository

    def backed_up() -> list:
        return json.loads(pgbackrest(repository, "--output=json", "info"))[0]["backup"]

    deadline = time.monotonic() + 240  # the first backup runs in the background
    while not backed_up() and time.monotonic() < deadline:
        time.sleep(2)
    assert backed_up(), repository.check_output(
        "journalctl -u pgbackrest-full@db1.service --no-pager -o cat | tail -n 20"
    )
    info = json.loads(pgbackrest(repository, "--output=json", "info"))[0]
    assert info["cipher"] == "aes-256-cbc"
    assert info["backup"][0]["type"] == "full"
    assert info["backup"][0]["error"] is False
    for kind in ("full", "diff"):
        assert repository.service(f"pgbackrest-{kind}@db1.timer").is_enabled
