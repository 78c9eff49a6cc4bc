"""Helpers shared by the uwsgi scenario's testinfra tests."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import molecule_hosts, playbook_runner

SCENARIO = Path(__file__).resolve().parents[1]
ROLES = SCENARIO.parents[2]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
PROBE = (ROLES.parent / "playbooks" / "files" / "webtier_probe.py").read_text()
UNIT = "uwsgi-demo"
PORT = 8001


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {UNIT}"))


def probe(host, *, path: str = "/", concurrency: int = 1, seconds: float = 0.2) -> dict:
    """Requests over the uwsgi protocol from inside the container (webtier_probe.py)."""
    args = f"uwsgi 127.0.0.1 {PORT} {path} {concurrency} {seconds}"
    out = host.check_output(f"python3 - {args} <<'PROBE'\n{PROBE}\nPROBE")
    return json.loads(out.strip().splitlines()[-1])


def uwsgi_get(host, path: str) -> tuple[int, str, float]:
    """One request over the uwsgi protocol: (status, body, seconds)."""
    start = time.monotonic()
    out = host.check_output(
        f"python3 - uwsgi-once 127.0.0.1 {PORT} {path} <<'PROBE'\n{PROBE}\nPROBE"
    )
    seconds = time.monotonic() - start
    reply = json.loads(out.strip().splitlines()[-1])
    return reply["status"], reply["body"], seconds


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario: (returncode, flat output)."""
    return playbook_runner(SCENARIO)
