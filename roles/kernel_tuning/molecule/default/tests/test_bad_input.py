"""Invalid input fails before any change, with a message naming the variable."""

from __future__ import annotations

import json
import re

import pytest

# Two cases on the real hosts, proving nothing changes before the check passes; the
# role's other rules are judged by tests/engines/test_live_check.py (webtier.checks.live).
CASES = [
    (
        {"kernel_tuning_somaxconn": 10},
        "kernel_tuning_somaxconn=10 breaks the kernel_tuning role's model: at least 128",
    ),
    (
        {"kernel_tuning_host_kind": "vm"},
        "value of kernel_tuning_host_kind must be one of: auto, container, machine",
    ),
]


@pytest.mark.parametrize(("extra", "message"), CASES, ids=[next(iter(c[0])) for c in CASES])
def test_invalid_input_fails_before_any_change(run_playbook, extra, message):
    result = run_playbook("bad_input.yml", "-e", json.dumps(extra))
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, out[-2000:]
    assert message in out, out[-3000:]
    # Nothing ran past validation, and nothing changed on either platform.
    assert "Write the sysctl drop-in" not in out
    recap = re.findall(r"(debian1[23])\s*:\s*ok=\d+\s+changed=(\d+)", out)
    assert sorted(host for host, _ in recap) == ["debian12", "debian13"], out[-1500:]
    assert all(changed == "0" for _, changed in recap), recap
