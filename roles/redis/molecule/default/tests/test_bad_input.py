"""Invalid input fails before any change, with a message naming the variable."""

from __future__ import annotations

import json
import re

import pytest
from conftest import flat_output

# Cases on the real hosts, proving nothing changes before the check passes; the
# role's other rules are judged by tests/engines/test_live_check.py (webtier.checks.live).
CASES = {
    "backlog above somaxconn": (
        {"redis_tcp_backlog": 60000},
        "redis_tcp_backlog=60000 breaks net.core.somaxconn=8192",
    ),
    "public bind without auth": (
        {"redis_bind": ["0.0.0.0"], "redis_auth": False},
        "redis_auth=false breaks authentication when Redis listens beyond loopback (0.0.0.0)",
    ),
}


def fingerprint(host) -> str:
    """Checksum of every file the role writes, and the server's PID."""
    files = "/etc/redis/* /etc/valkey/* /etc/systemd/system/*-server.service.d/*"
    return host.check_output(
        f"cat {files} 2>/dev/null | sha256sum; pidof redis-server valkey-server"
    )


@pytest.mark.parametrize(("extra", "message"), CASES.values(), ids=CASES.keys())
def test_invalid_input_fails_before_any_change(run_playbook, instances, extra, message):
    before = {n: fingerprint(h) for n, h in instances.items()}
    result = run_playbook("redis_only.yml", "-e", json.dumps(extra))
    out = flat_output(result)
    assert result.returncode != 0, out[-2000:]
    assert message in out, out[-3000:]
    recap = re.findall(r"([a-z]+-debian1[23])\s*:\s*ok=\d+\s+changed=(\d+)", out)
    assert len(recap) == len(instances), out[-1500:]
    assert all(changed == "0" for _, changed in recap), recap
    after = {n: fingerprint(h) for n, h in instances.items()}
    assert after == before


def test_valkey_is_refused_where_debian_does_not_package_it(run_playbook):
    result = run_playbook(
        "redis_only.yml", "--limit", "redis-debian12", "-e", "redis_engine=valkey"
    )
    out = flat_output(result)
    assert result.returncode != 0
    assert "redis_engine=valkey breaks what Debian bookworm packages" in out, out[-2000:]
    assert re.search(r"redis-debian12\s*:\s*ok=\d+\s+changed=0", out), out[-1500:]
