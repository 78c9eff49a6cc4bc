"""No secret leaves the controller except into the files and servers that need it.

The replication and app passwords are rotated on the converged sets, first with
``--check --diff`` (what the README recommends before a production change; on the TLS
set, whose files hold the most secrets), then for real with ``--diff``. While both runs
go on, a sampler inside every host reads the argv and the environment of every process
(``/proc/*/cmdline``, ``/proc/*/environ``) in a loop. Then every password of the
scenario, old and new, its SHA-256 (the form the ACL file holds) and the TLS set's
private keys are looked for in: the check-mode output, the real run's task results
(JSON callback), the samples and each host's journal since the start. The rotated
passwords then become the scenario's own (its secrets files), so the tests after this
one, and any later converge, use what the servers now hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SCENARIO, SETS, TLS_SET, info, secret, wait_for
from scenario import run_playbook as run_playbook_in

HOSTS = [name for members in SETS.values() for name in members]
STOP = "/run/webtier-sampler.stop"
SAMPLES = "/run/webtier-sampler.out"
STARTED = "/run/webtier-sampler.started"
# Every process's argv and environment, as often as the CPU allows, until STOP exists.
SAMPLER = f"""
import os
seen, rounds = set(), 0
while not os.path.exists({STOP!r}):
    rounds += 1
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{{pid}}/{{name}}", "rb") as stream:
                        seen.add(stream.read())
                except OSError:
                    pass
    if rounds == 1:  # the test starts its canary once a whole round is done
        open({STARTED!r}, "w").close()
with open({SAMPLES!r}, "wb") as stream:
    stream.write(b"rounds=%d\\n" % rounds + b"\\n".join(seen))
"""
ROTATED = ("app", "replication")
KEPT = ("admin", "sentinel", "sentinel-auth")


def docker(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, check=True, **kwargs)


def found(text: str | bytes, wanted: dict[str, str]) -> list[str]:
    """Names of the wanted strings that occur in text."""
    data = text.encode() if isinstance(text, str) else text
    return sorted(name for name, value in wanted.items() if value.encode() in data)


@pytest.fixture(scope="module")
def hunt(tmp_path_factory, instances):
    """Rotate two passwords under the sampler; everything the runs left, by source."""
    new = {name: "rotated-" + secrets.token_hex(12) for name in ROTATED}
    extra = tmp_path_factory.mktemp("rotate") / "secrets.json"
    extra.write_text(json.dumps({f"redis_{name}_password": value for name, value in new.items()}))
    extra.chmod(0o600)
    old = {name: secret(name) for name in ROTATED + KEPT}
    wanted = {f"old {k}": v for k, v in old.items()} | {f"new {k}": v for k, v in new.items()}
    wanted |= {f"sha256 of {k}": hashlib.sha256(v.encode()).hexdigest() for k, v in wanted.items()}
    # The TLS set's private keys: the first line of each key's body.
    pki = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki"
    wanted |= {
        f"TLS key of {name}": (pki / f"{name}.key").read_text().splitlines()[1]
        for name in SETS[TLS_SET]
    }

    since = int(time.time()) - 1
    canary = "webtier-canary-" + secrets.token_hex(8)
    for name in HOSTS:
        docker("exec", name, "rm", "-f", STOP, SAMPLES, STARTED)
        docker("exec", "-d", name, "python3", "-c", SAMPLER)
        # A short-lived process with a marked environment: the sampler must see it. It
        # starts once the sampler is sampling (on a loaded machine the sampler's own
        # start-up once outlasted it).
        docker("exec", name, "sh", "-c", f"until [ -e {STARTED} ]; do sleep 0.05; done", timeout=60)
        docker("exec", "-e", f"WEBTIER_CANARY={canary}", name, "sleep", "0.5")
    # The check run on the TLS set alone: the sets share every password, and that set's
    # files also hold its TLS keys (the real run below converges both sets).
    check = run_playbook_in(
        SCENARIO / "converge.yml",
        "--check",
        "--diff",
        "--limit",
        TLS_SET,
        "-e",
        f"@{extra}",
        timeout=900,
    )
    real = run_playbook_in(
        SCENARIO / "converge.yml",
        "--diff",
        "-e",
        f"@{extra}",
        timeout=900,
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
    )
    samples, journals = {}, {}
    for name in HOSTS:
        docker("exec", name, "touch", STOP)
        docker("exec", name, "sh", "-c", f"until [ -s {SAMPLES} ]; do sleep 0.1; done", timeout=30)
        samples[name] = docker("exec", name, "cat", SAMPLES).stdout
        journals[name] = docker(
            "exec", name, "journalctl", "--no-pager", "-o", "cat", "--since", f"@{since}"
        ).stdout.decode(errors="replace")

    def linked(host) -> bool:
        return info(host, "replication").get("master_link_status") != "down"

    in_sync = {name: wait_for(lambda h=host: linked(h), 20)[0] for name, host in instances.items()}
    # What the servers hold now: the scenario's passwords (no third converge to put the
    # old ones back).
    if real.returncode == 0:
        for name, value in new.items():
            (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / name).write_text(value)
    return {
        "wanted": wanted,
        "canary": canary,
        "check": check,
        "real": real,
        "samples": samples,
        "journals": journals,
        "in_sync": in_sync,
    }


def test_the_rotation_converged(hunt):
    assert hunt["check"].returncode == 0, hunt["check"].stdout[-3000:]
    assert hunt["real"].returncode == 0, hunt["real"].stdout[-3000:]
    assert all(hunt["in_sync"].values()), hunt["in_sync"]


def test_the_sampler_sees_short_lived_processes(hunt):
    """The control: a 0.5 s process's environment is in every host's samples."""
    for name, data in hunt["samples"].items():
        assert hunt["canary"].encode() in data, name
        assert int(data.split(b"\n", 1)[0].split(b"=")[1]) > 100, f"{name}: too few sampling rounds"


def test_no_secret_in_the_check_diff_output(hunt):
    output = hunt["check"].stdout + hunt["check"].stderr
    # The run did reach the files that hold the secrets (shown changed, without a diff).
    assert "TASK [webtier.stack.redis : Write the server configuration" in output
    assert "TASK [webtier.stack.redis : Write the ACL file" in output
    assert found(output, hunt["wanted"]) == []


def test_no_secret_in_the_task_results(hunt):
    results = json.loads(hunt["real"].stdout)
    tasks = [task for play in results["plays"] for task in play["tasks"]]
    assert any("Apply the changes to the running server" in t["task"]["name"] for t in tasks)
    assert found(hunt["real"].stdout + hunt["real"].stderr, hunt["wanted"]) == []


@pytest.mark.parametrize("name", HOSTS)
def test_no_secret_in_any_process_argv_or_environment(hunt, name):
    assert found(hunt["samples"][name], hunt["wanted"]) == []


@pytest.mark.parametrize("name", HOSTS)
def test_no_secret_in_the_journal(hunt, name):
    journal = hunt["journals"][name]
    # Modules log their arguments there (no_log ones masked): the source is not empty.
    assert "Invoked with" in journal
    assert found(journal, hunt["wanted"]) == []
