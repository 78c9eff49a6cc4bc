"""Helpers of the whole-stack scenario's tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# The helpers every scenario shares: tests/support/scenario.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "support"))
from scenario import molecule_hosts

ROOT = Path(__file__).resolve().parents[3]


def get(host, url: str, *headers: str) -> tuple[int, dict]:
    """(status, JSON body) of one GET from inside the host, with ``headers``."""
    flags = "".join(f" -H '{h}'" for h in headers)
    out = host.check_output(f"curl -sk -m 10{flags} -w '\\n%{{http_code}}' '{url}'")
    body, status = out.rsplit("\n", 1)
    return int(status), json.loads(body) if status == "200" else {}


@pytest.fixture(scope="session")
def instances() -> dict:
    return molecule_hosts()
