"""Helpers shared by the uwsgi scenario's testinfra tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
ROLES = SCENARIO.parents[2]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
LOADPROBE = (ROLES.parent / "tests" / "support" / "loadprobe.py").read_text()
UNIT = "uwsgi-demo"
PORT = 8001


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {UNIT}"))


def probe(host, *, path: str = "/", concurrency: int = 1, seconds: float = 0.2) -> dict:
    """Requests over the uwsgi protocol from inside the container (tests/support/loadprobe.py)."""
    args = f"uwsgi 127.0.0.1 {PORT} {path} {concurrency} {seconds}"
    out = host.check_output(f"python3 - {args} <<'PROBE'\n{LOADPROBE}\nPROBE")
    return json.loads(out.strip().splitlines()[-1])


def uwsgi_get(host, path: str) -> tuple[int, str, float]:
    """One request over the uwsgi protocol: (status, body, seconds)."""
    start = time.monotonic()
    out = host.check_output(
        f"python3 - uwsgi-once 127.0.0.1 {PORT} {path} <<'PROBE'\n{LOADPROBE}\nPROBE"
    )
    seconds = time.monotonic() - start
    reply = json.loads(out.strip().splitlines()[-1])
    return reply["status"], reply["body"], seconds


@pytest.fixture(scope="session")
def instances() -> dict:
    hosts = testinfra.get_hosts(
        ["ansible://molecule"], ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )
    return {h.backend.get_hostname(): h for h in hosts}


@pytest.fixture(scope="session")
def run_playbook():
    def run(playbook: str, *args: str) -> tuple[int, str]:
        inventory = os.environ["MOLECULE_INVENTORY_FILE"]
        env = {
            **os.environ,
            "ANSIBLE_ROLES_PATH": str(ROLES),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
        proc = subprocess.run(
            ["ansible-playbook", "-i", inventory, str(SCENARIO / playbook), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
        return proc.returncode, " ".join(
            re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr).split()
        )

    return run
