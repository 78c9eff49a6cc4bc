"""The stack converges over SSH as an unprivileged user with become, as in production."""

from __future__ import annotations

import os
import subprocess

from conftest import ROOT

SSH_VARS = [
    "ansible_connection=ssh",
    "ansible_user=deploy",
    "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
]


def over_ssh(host_ip: str, *argv: str, become: bool = True) -> subprocess.CompletedProcess:
    key = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "id_ed25519")
    extra = [
        *SSH_VARS,
        f"ansible_become={str(become).lower()}",
        f"ansible_host={host_ip}",
        f"ansible_ssh_private_key_file={key}",
    ]
    return subprocess.run(
        [*argv, "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-e", " ".join(extra)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        timeout=900,
        check=False,
    )


def address(host) -> str:
    return host.check_output("hostname -I").split()[0]


def test_ssh_user_is_unprivileged_and_becomes_root(instances):
    ip = address(instances["app1"])
    plain = over_ssh(
        ip, "ansible", "app1", "-m", "ansible.builtin.command", "-a", "id -un", become=False
    )
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "deploy" in plain.stdout
    become = over_ssh(ip, "ansible", "app1", "-m", "ansible.builtin.command", "-a", "id -un")
    assert become.returncode == 0, become.stdout + become.stderr
    assert "root" in become.stdout


def test_site_converges_over_ssh_with_nothing_to_change(instances):
    """app1 was converged through the container engine; over SSH + sudo nothing differs."""
    run = over_ssh(address(instances["app1"]), "ansible-playbook", "site.yml", "--limit", "app1")
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    recap = next(line for line in out.splitlines() if line.startswith("app1 "))
    assert "changed=0" in recap, recap
    assert "failed=0" in recap, recap
