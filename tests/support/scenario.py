"""Helpers every Molecule scenario's testinfra tests share (imported by their conftest.py).

- ``run_playbook``: run one of the scenario's playbooks against the Molecule instances,
  with the repository's roles and no colour codes in the output;
- ``flat_output``: stdout and stderr of such a run as one whitespace-normalised string;
- ``molecule_hosts``: a testinfra host per instance, by name (for tests that compare
  hosts before and after a run, or look at a whole set of hosts at once);
- ``playbook_runner``: the ``run_playbook`` fixture of a scenario whose tests read
  ``(returncode, flat output)``;
- ``assert_refused_before_any_change``: a play with bad input fails with the expected
  message, changes nothing, and leaves the hosts' fingerprint as it was;
- ``nofile_limits``: (soft, hard) NOFILE from the text of ``/proc/PID/limits``;
- ``run_probe``: playbooks/files/webtier_probe.py run inside a host, its JSON answer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import testinfra

ROLES = Path(__file__).resolve().parents[2] / "roles"
PROBE = (ROLES.parent / "playbooks" / "files" / "webtier_probe.py").read_text()
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_playbook(
    playbook: Path, *args: str, timeout: int, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``playbook`` against the scenario's instances; its output has no colour codes."""
    full_env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROLES.parent / "collections"),
        # Molecule exports ANSIBLE_FORCE_COLOR; the tests read the output as text.
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        **(env or {}),
    }
    proc = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(playbook), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
    proc.stdout, proc.stderr = ANSI.sub("", proc.stdout), ANSI.sub("", proc.stderr)
    return proc


def flat_output(proc: subprocess.CompletedProcess) -> str:
    """stdout and stderr as one line, whitespace collapsed (messages wrap in the output)."""
    return " ".join((proc.stdout + proc.stderr).split())


def molecule_hosts() -> dict:
    """A testinfra host for every Molecule instance, by name."""
    hosts = testinfra.get_hosts(
        ["ansible://molecule"], ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )
    return {h.backend.get_hostname(): h for h in hosts}


def playbook_runner(scenario: Path, timeout: int = 900) -> Callable[..., tuple[int, str]]:
    """run(playbook, *args) -> (returncode, flat output), for the scenario's playbooks."""

    def run(playbook: str, *args: str) -> tuple[int, str]:
        proc = run_playbook(scenario / playbook, *args, timeout=timeout)
        return proc.returncode, flat_output(proc)

    return run


def assert_refused_before_any_change(
    run: Callable[..., tuple[int, str]],
    playbook: str,
    extra: Mapping,
    message: str,
    fingerprint: Callable[[], object],
) -> None:
    """``playbook`` with ``extra`` vars fails with ``message``, changes nothing on any
    host (changed=0), and ``fingerprint()`` (live files, PIDs) is the same after."""
    before = fingerprint()
    rc, out = run(playbook, "-e", json.dumps(extra))
    assert rc != 0
    assert message in out, out[-3000:]
    assert "changed=0" in out
    assert fingerprint() == before


def nofile_limits(limits_text: str) -> tuple[int, int]:
    """(soft, hard) 'Max open files' from the text of /proc/PID/limits."""
    match = re.search(r"^Max open files\s+(\d+)\s+(\d+)", limits_text, re.MULTILINE)
    assert match, f"no 'Max open files' line in:\n{limits_text}"
    return int(match.group(1)), int(match.group(2))


def run_probe(host, *args: object) -> dict:
    """webtier_probe.py with ``args``, run by the host's python3 (it needs nothing else);
    the JSON line it prints last."""
    argv = " ".join(map(str, args))
    out = host.check_output(f"python3 - {argv} <<'WEBTIER_PROBE'\n{PROBE}\nWEBTIER_PROBE")
    return json.loads(out.strip().splitlines()[-1])
