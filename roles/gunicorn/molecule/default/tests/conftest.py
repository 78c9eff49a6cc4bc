"""Helpers shared by the gunicorn scenario's testinfra tests."""

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
PLATFORMS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"][
    "host_vars"
]
UNIT = "gunicorn-demo"


def host_vars(host) -> dict:
    return PLATFORMS[host.backend.get_hostname()]


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show -p MainPID --value {UNIT}"))


def wait_for_new_workers(host, old: set[str], want: int, seconds: float = 120) -> None:
    """Wait until a reload has replaced every worker in ``old`` with ``want`` new ones,
    each having answered: the next test starts from a settled service, not from one
    still booting workers (a second HUP then would retire them before they served, and
    hold every request in the listen queue until the third set boots)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        workers = set(host.check_output(f"pgrep -P {main_pid(host)} || true").split())
        if len(workers) == want and not workers & old:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"workers {old} not replaced by {want} new ones in {seconds} s")
    # A worker is forked before it has loaded the app; until one has, a request waits
    # in the listen queue. An answer to a new connection: at least one has.
    while time.monotonic() < deadline:
        if host.run("curl -sf -m 5 -o /dev/null http://127.0.0.1:8000/healthz").rc == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"no new worker answered in {seconds} s")


def get(host, path: str) -> tuple[int, str, float]:
    """(status, body, seconds) of a GET to the app on the host."""
    out = host.check_output(
        f"curl -s -m 5 -o /tmp/body -w '%{{http_code}} %{{time_total}}' http://127.0.0.1:8000{path}"
    )
    status, seconds = out.split()
    return int(status), host.file("/tmp/body").content_string, float(seconds)


def load(host, *, path: str = "/", concurrency: int = 16, seconds: float = 5) -> dict:
    """Run the bounded HTTP load probe inside the container; its JSON result."""
    return run_probe(host, "http", "127.0.0.1", 8000, path, concurrency, seconds)


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario: (returncode, flat output)."""
    return playbook_runner(SCENARIO)


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()
