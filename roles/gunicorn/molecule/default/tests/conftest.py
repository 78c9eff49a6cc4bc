"""Helpers shared by the gunicorn scenario's testinfra tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import testinfra
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
ROLES = SCENARIO.parents[2]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
PLATFORMS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"][
    "host_vars"
]
LOADPROBE = (ROLES.parent / "tests" / "support" / "loadprobe.py").read_text()
UNIT = "gunicorn-demo"


def host_vars(host) -> dict:
    return PLATFORMS[host.backend.get_hostname()]


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {UNIT}"))


def get(host, path: str) -> tuple[int, str, float]:
    """(status, body, seconds) of a GET to the app on the host."""
    out = host.check_output(
        f"curl -s -m 5 -o /tmp/body -w '%{{http_code}} %{{time_total}}' http://127.0.0.1:8000{path}"
    )
    status, seconds = out.split()
    return int(status), host.file("/tmp/body").content_string, float(seconds)


def load(host, *, path: str = "/", concurrency: int = 16, seconds: float = 5) -> dict:
    """Run the bounded HTTP load probe inside the container; its JSON result."""
    args = f"http 127.0.0.1 8000 {path} {concurrency} {seconds}"
    out = host.check_output(f"python3 - {args} <<'PROBE'\n{LOADPROBE}\nPROBE")
    return json.loads(out.strip().splitlines()[-1])


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


@pytest.fixture(scope="session")
def instances() -> dict:
    hosts = testinfra.get_hosts(
        ["ansible://molecule"], ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )
    return {h.backend.get_hostname(): h for h in hosts}
