"""Helpers shared by the redis scenario's testinfra tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import flat_output, molecule_hosts
from scenario import run_playbook as run_playbook_in

SCENARIO = Path(__file__).resolve().parents[1]
ROLES = SCENARIO.parents[2]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())

ENGINES = {
    "redis": {
        "cli": "redis-cli",
        "service": "redis-server",
        "conf": "/etc/redis/redis.conf",
        "log": "/var/log/redis/redis-server.log",
        "sock": "/run/redis/redis-server.sock",
    },
    "valkey": {
        "cli": "valkey-cli",
        "service": "valkey-server",
        "conf": "/etc/valkey/valkey.conf",
        "log": "/var/log/valkey/valkey-server.log",
        "sock": "/run/valkey/valkey-server.sock",
    },
}


def engine(host) -> dict[str, str]:
    name = host.backend.get_hostname()
    return ENGINES["valkey" if name.startswith("valkey") else "redis"]


def secret(name: str) -> str:
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / name).read_text().strip()


def cli(host, *args: str, user: str | None = "admin", tcp: bool = False):
    """Run one command with the engine's CLI; returns the testinfra CommandResult."""
    eng = engine(host)
    where = "-h 127.0.0.1 -p 6379" if tcp else f"-s {eng['sock']}"
    auth = f"REDISCLI_AUTH={secret(user)} " if user else ""
    who = f"--user {user} " if user else ""
    quoted = " ".join(f"'{a}'" for a in args)
    return host.run(f"{auth}{eng['cli']} {where} {who}--no-auth-warning {quoted}")


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {engine(host)['service']}"))


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario against every instance; returns the CompletedProcess."""

    def run(playbook: str, *args: str):
        return run_playbook_in(SCENARIO / playbook, *args, timeout=600)

    return run


def state(host) -> dict[str, str | int]:
    """What a converge may change on one instance: PID, live settings, file checksum."""
    values = {}
    for name in ("maxmemory", "maxmemory-policy", "appendonly", "tcp-backlog"):
        values[name] = cli(host, "CONFIG", "GET", name).stdout.strip().splitlines()[-1]
    values["pid"] = main_pid(host)
    values["conf_sha256"] = host.check_output(f"sha256sum {engine(host)['conf']}").split()[0]
    values["listen_backlog"] = int(host.check_output("ss -ltnH 'sport = :6379'").split()[2])
    return values


@dataclass
class Change:
    before: dict
    result: subprocess.CompletedProcess
    after: dict
    restored: subprocess.CompletedProcess
    final: dict

    @property
    def output(self) -> str:
        return flat_output(self.result)


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()


@pytest.fixture(scope="session")
def converge_with(run_playbook, instances):
    """Re-converge every instance with extra vars, then without (when that worked).

    Each distinct change runs once per session; the tests of every host read its result.
    """
    cache: dict[str, Change] = {}

    def run(extra: str) -> Change:
        if extra not in cache:
            before = {name: state(h) for name, h in instances.items()}
            result = run_playbook("redis_only.yml", "-e", extra)
            after = {name: state(h) for name, h in instances.items()}
            restored = run_playbook("redis_only.yml") if result.returncode == 0 else result
            final = {name: state(h) for name, h in instances.items()}
            cache[extra] = Change(before, result, after, restored, final)
        return cache[extra]

    return run
