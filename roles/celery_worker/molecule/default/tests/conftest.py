"""Helpers shared by the celery_worker scenario's testinfra tests."""

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
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
QUEUES = {q["name"]: q["concurrency"] for q in VARS["celery_worker_queues"]}
UNIT = "celery-demo-work"


def as_worker(unit: str = UNIT) -> str:
    """The command prefix that runs as the worker ``unit`` runs (its user, environment
    files and sandbox)."""
    return f"/usr/local/sbin/webtier-unit-run --unit {unit} --chdir /srv/demo/current --"


AS_WORKER = as_worker()
PYTHON = "/srv/demo/current/venv/bin/python"


def tasks(host, *args: object, check: bool = True, unit: str = UNIT) -> str:
    """The demo's task command (enqueue, wait, stream) on the host, as the worker runs."""
    command = f"{as_worker(unit)} {PYTHON} -m webtier_demo_flask.tasks {' '.join(map(str, args))}"
    return host.check_output(command) if check else host.run(command).stdout


def status(host, unit: str = UNIT) -> dict:
    """What the launcher's status command says (queues, unacked, workers)."""
    return json.loads(
        host.check_output(f"{as_worker(unit)} {PYTHON} /srv/demo/current/webtier_celery.py status")
    )


def main_pid(host, unit: str = UNIT) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


def journal_count(host, text: str, since: int) -> int:
    """Lines of the worker's journal since ``since`` (epoch seconds) that hold ``text``."""
    out = host.run(f"journalctl -u {UNIT} --since @{since} --no-pager -o cat").stdout
    return sum(text in line for line in out.splitlines())


def wait_until(predicate, seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario: (returncode, flat output)."""
    return playbook_runner(SCENARIO)
