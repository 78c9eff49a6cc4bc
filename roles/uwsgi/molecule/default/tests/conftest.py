"""Helpers shared by the uwsgi scenario's testinfra tests."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import molecule_hosts, playbook_runner, run_probe

from webtier.model import derive

SCENARIO = Path(__file__).resolve().parents[1]
#: What each instance is given (molecule.yml's host_vars); the rest is the role's default.
GIVEN = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"][
    "host_vars"
]
DEFAULTS = yaml.safe_load((SCENARIO.parents[1] / "defaults" / "main.yml").read_text())
UNIT = "uwsgi-demo"
PORT = 8001


def setting(host, name: str):
    """The uwsgi role's input on this instance: given in molecule.yml, else its default;
    ``uwsgi_processes: auto`` is what the model derives from the CPUs a service gets."""
    value = GIVEN.get(host.backend.get_hostname(), {}).get(name, DEFAULTS[name])
    if name == "uwsgi_processes":
        cpus = int(host.check_output("systemd-run --quiet --wait --pipe --collect nproc"))
        value = derive.uwsgi_processes(value, cpus)
    return value


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {UNIT}"))


def probe(host, *, path: str = "/", concurrency: int = 1, seconds: float = 0.2) -> dict:
    """Requests over the uwsgi protocol from inside the container (webtier_probe.py)."""
    return run_probe(host, "uwsgi", "127.0.0.1", PORT, path, concurrency, seconds)


def uwsgi_get(host, path: str) -> tuple[int, str, float]:
    """One request over the uwsgi protocol: (status, body, seconds)."""
    start = time.monotonic()
    reply = run_probe(host, "uwsgi-once", "127.0.0.1", PORT, path)
    seconds = time.monotonic() - start
    return reply["status"], reply["body"], seconds


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario: (returncode, flat output)."""
    return playbook_runner(SCENARIO)
