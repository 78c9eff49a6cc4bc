"""Helpers shared by this scenario's testinfra tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import yaml

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tests" / "support"))
from scenario import nofile_limits
from scenario import run_playbook as run_playbook_in

SCENARIO = Path(__file__).resolve().parents[1]
ROLES = SCENARIO.parents[2]
VARS = yaml.safe_load((SCENARIO / "vars" / "scenario.yml").read_text())
DROPIN = "/etc/sysctl.d/60-webtier.conf"


def expected_sysctl() -> tuple[dict[str, str], dict[str, str]]:
    """(per-namespace, global) keys with the values this scenario asks for."""
    port = VARS["kernel_tuning_ip_local_port_range"]
    netns = {
        "net.core.somaxconn": str(VARS["kernel_tuning_somaxconn"]),
        "net.ipv4.tcp_max_syn_backlog": str(VARS["kernel_tuning_tcp_max_syn_backlog"]),
        "net.ipv4.ip_local_port_range": f"{port['low']} {port['high']}",
        "net.ipv4.tcp_fin_timeout": str(VARS["kernel_tuning_tcp_fin_timeout"]),
        "net.ipv4.tcp_syncookies": "1",
        "net.ipv4.tcp_tw_reuse": "1",
    }
    global_ = {
        "net.core.netdev_max_backlog": str(VARS["kernel_tuning_netdev_max_backlog"]),
        "fs.file-max": str(VARS["kernel_tuning_file_max"]),
        "fs.nr_open": str(VARS["kernel_tuning_nr_open"]),
        "vm.max_map_count": "262144",
    }
    return netns, global_


def expected_nofile(host) -> int:
    """The role caps the asked NOFILE at what a container's service manager can grant."""
    _, pid1_hard = nofile_limits(host.file("/proc/1/limits").content_string)
    return min(VARS["kernel_tuning_nofile"], pid1_hard)


@pytest.fixture(scope="session")
def run_playbook():
    """Run a playbook of this scenario against the Molecule instances."""

    def run(playbook: str, *args: str, env: dict[str, str] | None = None):
        return run_playbook_in(SCENARIO / playbook, *args, timeout=300, env=env)

    return run


def host_snapshot() -> dict[str, str]:
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "host-sysctl.json"
    return json.loads(path.read_text())
