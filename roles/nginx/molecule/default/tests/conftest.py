"""Helpers shared by the nginx scenario's testinfra tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import molecule_hosts, playbook_runner, run_probe

SCENARIO = Path(__file__).resolve().parents[1]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
LOAD_BALANCERS = ["lb13", "lb12"]
API_PORT = 8088  # the site that passes to Gunicorn alone


def curl(host, url: str, *options: str) -> tuple[int, dict, str]:
    """(status, headers, body) of one request from inside the host."""
    flags = " ".join(options)
    out = host.check_output(
        f"curl -sk -m 10 -D /tmp/headers -o /tmp/body -w '%{{http_code}}' {flags} '{url}'"
    )
    headers = {}
    for line in host.file("/tmp/headers").content_string.splitlines()[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(out), headers, host.file("/tmp/body").content_string


def served_by(host, url: str, count: int) -> list[str]:
    """Which server answered each of ``count`` GETs (the demo app says so); 'status N' else."""
    script = (
        f"for i in $(seq {count}); do curl -sk -m 10 -w '\\nSTATUS %{{http_code}}\\n' '{url}'; done"
    )
    answers, body = [], ""
    for line in host.check_output(script).splitlines():
        if line.startswith("STATUS "):
            status = line.split()[1]
            answers.append(json.loads(body)["server"] if status == "200" else f"status {status}")
            body = ""
        elif line.strip():
            body = line
    assert len(answers) == count
    return answers


def load(host, *, port: int = 80, path: str = "/", concurrency: int = 16, seconds: float = 5):
    """The bounded HTTP load probe, run inside the host against its own nginx."""
    return run_probe(host, "http", "127.0.0.1", port, path, concurrency, seconds)


def fingerprint(hosts) -> dict:
    """Checksums of the live files and the master's PID on each load balancer."""
    command = (
        "sha256sum /etc/nginx/nginx.conf /etc/nginx/webtier/http.conf /etc/nginx/webtier/sites/*;"
        " systemctl show -p MainPID --value nginx"
    )
    return {name: h.check_output(command) for name, h in hosts.items()}


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()


@pytest.fixture(scope="session")
def load_balancers(instances) -> dict:
    return {name: instances[name] for name in LOAD_BALANCERS}


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario: (returncode, flat output)."""
    return playbook_runner(SCENARIO)
