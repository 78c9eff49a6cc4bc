"""Helpers shared by the Redis HA scenario's tests: two sets of three hosts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import molecule_hosts
from scenario import run_playbook as run_playbook_in

SCENARIO = Path(__file__).resolve().parents[1]
ROLES = SCENARIO.parents[2]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
SETS = {
    "redis_set13": ["ha13-a", "ha13-b", "ha13-c"],
    "redis_set12": ["ha12-a", "ha12-b", "ha12-c"],
}
SOCKET = "/run/redis/redis-server.sock"
# The Debian 13 set runs TLS only (molecule.yml): its clients name the CA.
TLS_SET = "redis_set13"
CA = "/etc/redis/tls/ca.crt"


def tls_flags(host) -> str:
    """redis-cli's TLS options for a host of the TLS set, else nothing."""
    return f"--tls --cacert {CA} " if host.backend.get_hostname() in SETS[TLS_SET] else ""


def secret(name: str) -> str:
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / name).read_text().strip()


def redis(host, *args: str, user: str = "admin") -> str:
    """Reply of one command on the host's server over its unix socket."""
    quoted = " ".join(f"'{a}'" for a in args)
    auth = f"REDISCLI_AUTH={secret(user)} redis-cli --user {user} --no-auth-warning"
    return host.check_output(f"{auth} -s {SOCKET} {quoted}")


def sentinel(host, *args: str) -> str:
    """Reply of one command on the host's Sentinel."""
    quoted = " ".join(f"'{a}'" for a in args)
    return host.check_output(
        f"REDISCLI_AUTH={secret('sentinel')} redis-cli {tls_flags(host)}-p 26379 "
        f"--no-auth-warning {quoted}"
    )


def info(host, section: str) -> dict[str, str]:
    lines = redis(host, "INFO", section).splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def primary_by_sentinel(host) -> str:
    return sentinel(
        host,
        "SENTINEL",
        "get-master-addr-by-name",
        "webtier",
    ).splitlines()[0]


def wait_for(predicate, timeout: float, step: float = 0.25):
    """Poll predicate() until it returns a truthy value; (value, seconds waited)."""
    start = time.monotonic()
    while True:
        value = predicate()
        waited = time.monotonic() - start
        if value or waited > timeout:
            return value, waited
        time.sleep(step)


def main_pid(host, unit: str = "redis-server") -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()


@pytest.fixture(scope="session")
def run_converge():
    def run() -> subprocess.CompletedProcess:
        return run_playbook_in(SCENARIO / "converge.yml", timeout=900)

    return run
