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

SCENARIO = Path(__file__).resolve().parents[1]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
UNIT = "uwsgi-demo"
PORT = 8001


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
