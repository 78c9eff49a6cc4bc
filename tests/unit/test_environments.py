"""Every environment's inventory works with Ansible, and keeps its secrets in a vault."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from webtier import ROOT

ENVIRONMENTS = sorted(p.name for p in (ROOT / "inventory").iterdir() if (p / "hosts.yml").exists())
REMOTE = [env for env in ENVIRONMENTS if env != "sandbox"]
SECRET_NAME = re.compile(r"(password|secret|token|passphrase)", re.IGNORECASE)


def ansible(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)


def test_there_are_the_three_environments():
    assert {"sandbox", "staging", "production"} <= set(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_inventory_graph(env):
    proc = ansible("ansible-inventory", "-i", f"inventory/{env}", "--graph")
    assert proc.returncode == 0, proc.stderr
    for group in ("loadbalancers", "appservers", "app_gunicorn", "app_uwsgi", "redis"):
        assert f"@{group}:" in proc.stdout, (group, proc.stdout)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_site_syntax_check(env):
    proc = ansible("ansible-playbook", "-i", f"inventory/{env}", "site.yml", "--syntax-check")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("env", REMOTE)
def test_remote_environments_connect_over_ssh_with_become(env):
    path = ROOT / f"inventory/{env}/group_vars/all/connection.yml"
    connection = yaml.safe_load(path.read_text())
    assert connection["ansible_user"] != "root"
    assert connection["ansible_become"] is True
    assert "ansible_connection" not in connection  # ssh, Ansible's default


@pytest.mark.parametrize("env", REMOTE)
def test_vault_file_is_encrypted_with_the_environments_vault_id(env):
    vault = (ROOT / f"inventory/{env}/group_vars/all/vault.yml").read_text()
    assert vault.splitlines()[0] == f"$ANSIBLE_VAULT;1.2;AES256;{env}"


@pytest.mark.parametrize("env", REMOTE)
def test_no_plaintext_secret_outside_the_vault(env):
    """Every secret-looking variable of a remote environment points into the vault."""
    for path in (ROOT / f"inventory/{env}").rglob("*.yml"):
        if path.name == "vault.yml":
            continue
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            continue
        for name, value in data.items():
            if not SECRET_NAME.search(name):
                continue
            if isinstance(value, dict):
                # A secret env file's entries: each built from variables, none literal.
                assert all("{{" in str(v) for v in value.values()), (path, name)
            else:
                assert re.fullmatch(r"\{\{ vault_\w+ \}\}", str(value)), (path, name)
