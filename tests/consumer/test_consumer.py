"""A project that is not this repository uses the collection, installed from its artifact.

One module-scoped run, the way README "Use it as a collection" tells a user:
``ansible-galaxy collection build`` makes the artifact; tests/consumer/project (its own
ansible.cfg, requirements.yml, playbook) installs it into its ./collections with no
Galaxy server, into a virtualenv of the project's own that sees nothing of this
checkout: Ansible from the project's requirements.txt, then what the collection names
(its requirements-controller.txt) and its webtier package, pip-installed from the
installed collection; ``webtier-new-env`` makes the environment and its vault; the
project's playbook, the collection's preflight then its roles, converges a container.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).parent / "project"
CONTAINER = "webtier-consumer-cache1"
PING = ["redis-cli", "--user", "app", "PING"]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if (p / "meta").is_dir())


def run(argv, cwd, timeout=600, check=True, env=None):
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**CLEAN_ENV, **(env or {})},
    )
    if check and proc.returncode:
        pytest.fail(
            f"{argv} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


# Nothing of this repository's Ansible set-up leaks in: no ANSIBLE_*, no WEBTIER_*.
CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "WEBTIER_", "MOLECULE_"))
} | {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The consumer project with the collection installed and its own virtualenv."""
    base = tmp_path_factory.mktemp("consumer")
    build = base / "build"
    run([REPO / "scripts/build-collection.sh", build], cwd=REPO)  # make collection
    (artifact,) = build.glob("webtier-stack-*.tar.gz")
    work = base / "project"
    shutil.copytree(PROJECT, work)
    shutil.copy(artifact, work / "webtier-stack.tar.gz")
    venv = work / ".venv"
    run([sys._base_executable, "-m", "venv", venv], cwd=work)
    python = venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, "-r", "requirements.txt"], cwd=work)
    run(
        [python, "-m", "ansible.cli.galaxy", "collection", "install", "-r", "requirements.yml"],
        cwd=work,
    )
    installed = work / "collections" / "ansible_collections" / "webtier" / "stack"
    # The collection's own controller requirements, and its webtier package.
    run([*pip, "-r", installed / "requirements-controller.txt", installed], cwd=work)
    env = {"PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
    return {"dir": work, "python": python, "bin": venv / "bin", "installed": installed, "env": env}


def ansible(project, tool, *args, timeout=900, check=True):
    return run(
        [project["python"], "-m", f"ansible.cli.{tool}", *args],
        cwd=project["dir"],
        timeout=timeout,
        check=check,
        env=project["env"],
    )


def test_the_installed_package_reads_the_installed_collection(project):
    where = run(
        [project["python"], "-c", "import webtier; print(webtier.__file__); print(webtier.ROOT)"],
        cwd=project["dir"],
    ).stdout.split()
    assert where[0].startswith(str(project["dir"] / ".venv"))
    assert Path(where[1]) == project["installed"].resolve()
    assert (project["installed"] / "MANIFEST.json").is_file()


def test_ansible_doc_shows_each_roles_spec_from_the_installed_collection(project):
    listed = ansible(project, "doc", "-t", "role", "-l", "webtier.stack").stdout
    for role in ROLES:
        assert f"webtier.stack.{role}" in listed
    for role in ROLES:
        shown = ansible(project, "doc", "-t", "role", f"webtier.stack.{role}").stdout
        spec = yaml.safe_load((REPO / "roles" / role / "meta/argument_specs.yml").read_text())
        assert "ENTRY POINT: *main*" in shown, shown[:400]
        for option in spec["argument_specs"]["main"]["options"]:
            assert option in shown, f"{role}: {option} is not in ansible-doc's page"


@pytest.fixture(scope="module")
def environment(project):
    """webtier-new-env's environment, with preflight's verdict before it is filled in."""
    password = project["dir"] / "vault-password"
    new_env = project["bin"] / "webtier-new-env"
    made = run(
        [new_env, "inventory/consumer", "--vault-password-file", password], cwd=project["dir"]
    )
    inventory = project["dir"] / "inventory" / "consumer"
    unfilled = run(
        [project["bin"] / "webtier-preflight", inventory], cwd=project["dir"], check=False
    )
    # This project's hosts: one Redis host in a container.
    shutil.copy(project["dir"] / "hosts.yml", inventory / "hosts.yml")
    return {"inventory": inventory, "password": password, "made": made, "unfilled": unfilled}


def test_a_new_environment_has_an_encrypted_vault_and_refuses_its_placeholders(environment):
    vault = (environment["inventory"] / "group_vars/all/vault.yml").read_text()
    assert vault.startswith("$ANSIBLE_VAULT;1.2;AES256;consumer\n")
    assert "vault_redis_app_password" not in vault
    out = environment["unfilled"].stdout
    assert environment["unfilled"].returncode == 1
    assert "lb1.consumer: ansible_host=CHANGE_ME breaks a placeholder left to fill in" in out
    assert "python_app_entrypoint=CHANGE_ME" in out


@pytest.fixture(scope="module")
def container():
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)
    subprocess.run(
        [
            "docker", "run", "-d", "--name", CONTAINER, "--hostname", "cache1",
            "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
            "--security-opt", "seccomp=unconfined",
            "--tmpfs", "/run", "--tmpfs", "/run/lock", "--tmpfs", "/tmp",
            "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
            "-v", "/var/cache/webtier/apt-proxy.conf:/etc/apt/apt.conf.d/01webtier-proxy:ro",
            "webtier-base:debian13",
            "/bin/sh", "-c", "mount -o remount,rw /proc/sys && exec /lib/systemd/systemd",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["docker", "exec", CONTAINER, "systemctl", "is-system-running", "--wait"],
        capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    yield CONTAINER
    subprocess.run(["docker", "rm", "-f", CONTAINER], capture_output=True, check=False)


@pytest.fixture(scope="module")
def converged(project, environment, container):
    """Ansible converges; the installed pyinfra engine converges the same host (refused
    first without the vault's password); Ansible again."""
    args = ["-i", environment["inventory"], "cache.yml"]
    args += ["--vault-id", f"consumer@{environment['password']}"]
    pyinfra = [project["bin"] / "webtier-pyinfra", environment["inventory"], "-y"]
    return {
        "ansible": ansible(project, "playbook", *args),
        "pyinfra sealed": run(pyinfra, cwd=project["dir"], check=False, env=project["env"]),
        "pyinfra": run(
            [*pyinfra, "--vault-password-file", environment["password"]],
            cwd=project["dir"],
            timeout=900,
            env=project["env"],
        ),
        "ansible again": ansible(project, "playbook", *args),
    }


def test_the_projects_playbook_converges_with_the_collections_roles(converged):
    first = converged["ansible"].stdout
    assert "Preflight checks of the whole inventory" in first
    assert "webtier.stack.redis : " in first
    assert "webtier.stack.firewall : " in first


def test_the_installed_pyinfra_engine_needs_the_vault_and_finds_nothing_to_change(converged):
    sealed = converged["pyinfra sealed"]
    assert sealed.returncode != 0
    # every vault file it cannot open is named: its variables would be missing
    assert "a vault file and no password to open it; give its password file" in (
        sealed.stdout + sealed.stderr
    )
    done = converged["pyinfra"].stderr  # (pyinfra reports there; it exited 0)
    assert "Traceback" not in done, done
    # After Ansible, the pyinfra engine finds nothing to change: every operation counts
    # under "No Change" (columns: hosts, success, error, no change).
    total = re.search(r"Grand total +(\d+) +(\S+) +(\S+) +(\d+)", done)
    assert total, done[-3000:]
    assert total.group(2, 3) == ("-", "-"), done[-3000:]
    assert total.group(4) == total.group(1), done[-3000:]
    again = converged["ansible again"].stdout
    recap = again[again.rindex("PLAY RECAP") :]
    assert "changed=0" in recap, recap
    assert "failed=0" in recap, recap


def test_redis_answers_the_vaulted_app_password(project, environment, converged):
    """After both engines: the secret on the host is the vault's, not a placeholder."""
    secret = ansible(
        project,
        "vault",
        "view",
        "--vault-id",
        f"consumer@{environment['password']}",
        environment["inventory"] / "group_vars/all/vault.yml",
    ).stdout
    password = next(
        line.split(":", 1)[1].strip()
        for line in secret.splitlines()
        if "redis_app_password" in line
    )
    ping = subprocess.run(
        ["docker", "exec", "-e", f"REDISCLI_AUTH={password}", CONTAINER, *PING],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ping.stdout.strip() == "PONG", ping
    wrong = subprocess.run(
        ["docker", "exec", "-e", "REDISCLI_AUTH=not-it", CONTAINER, *PING],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "PONG" not in wrong.stdout
