"""webtier-new-env: an environment preflight refuses until its placeholders are filled,
and accepts once they are, with a vault Ansible can open and the inventory loader opens
only with its password."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from webtier import ROOT, newenv
from webtier.checks import preflight
from webtier.model import vault
from webtier.model.inventory import InventoryError, load, sealed

FILLED = {
    # what a user writes over each CHANGE_ME, file by file
    "hosts.yml": ["10.0.0.10", "10.0.0.20", "10.0.0.30"],
    "group_vars/appservers/app.yml": ["apps/demo_flask", '"webtier_demo_flask:create_app()"'],
    "group_vars/loadbalancers/nginx.yml": ["www.example.com"],
}


def findings(inventory):
    loaded = load(inventory)
    return preflight.run(loaded.all_host_vars(), loaded.members)


def test_a_new_environment_passes_preflight_once_its_placeholders_are_filled(tmp_path):
    target = tmp_path / "inventory" / "staging2"
    password = tmp_path / "vault-password"
    newenv.create(target, password)

    unfilled = [f"{f.host} {f.variable}" for f in findings(target)]
    assert unfilled == [
        "lb1.staging2 ansible_host",
        "lb1.staging2 nginx_sites",
        "app1.staging2 ansible_host",
        "app1.staging2 python_app_entrypoint",
        "app1.staging2 python_app_src",
        "redis1.staging2 ansible_host",
    ]

    for name, values in FILLED.items():
        path = target / name
        lines, fill = [], iter(values)
        for line in path.read_text().splitlines(keepends=True):
            unfilled = preflight.PLACEHOLDER in line.split("#")[0]
            lines.append(line.replace(preflight.PLACEHOLDER, next(fill), 1) if unfilled else line)
        assert next(fill, None) is None, f"{name} has fewer placeholders than the test fills"
        path.write_text("".join(lines))
    assert findings(target) == []


def test_the_vault_is_encrypted_under_the_environments_name_and_opens(tmp_path):
    target = tmp_path / "prod-eu"
    password = tmp_path / "pw"
    newenv.create(target, password)
    assert oct(password.stat().st_mode & 0o777) == "0o600"
    vault = target / "group_vars/all/vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;prod-eu\n")
    plain = subprocess.run(
        ["ansible-vault", "view", "--vault-id", f"prod-eu@{password}", str(vault)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    values = dict(line.split(": ", 1) for line in plain.splitlines() if line.startswith("vault_"))
    assert set(values) == {"vault_redis_admin_password", "vault_redis_app_password"}
    assert len(set(values.values())) == 2
    assert all(len(v) >= 32 for v in values.values())
    # a second environment gets passwords of its own
    other = tmp_path / "other"
    newenv.create(other, tmp_path / "pw2")
    assert (other / "group_vars/all/vault.yml").read_text() != vault.read_text()


def test_an_existing_directory_is_left_alone(tmp_path):
    (tmp_path / "env").mkdir()
    assert newenv.main([str(tmp_path / "env"), "--vault-password-file", str(tmp_path / "p")]) == 2
    assert list((tmp_path / "env").iterdir()) == []


def test_the_inventory_opens_the_vault_only_with_its_password(tmp_path, monkeypatch):
    """The pyinfra engine deploys real secrets (WEBTIER_VAULT_PASSWORD_FILE), never the
    placeholder render and preflight use; a wrong password names the file."""
    target = tmp_path / "env1"
    newenv.create(target, tmp_path / "pw")
    host = "redis1.env1"
    monkeypatch.delenv(vault.PASSWORD_FILE, raising=False)
    closed = load(target).host_vars(host)
    assert closed["redis_app_users"][0]["password"] == "<vault:vault_redis_app_password>"
    assert sealed(closed) == ["redis_admin_password", "redis_app_users"]

    monkeypatch.setenv(vault.PASSWORD_FILE, str(tmp_path / "pw"))
    opened = load(target).host_vars(host)
    plain = vault.decrypt(target / "group_vars/all/vault.yml", tmp_path / "pw")
    assert f"vault_redis_app_password: {opened['redis_app_users'][0]['password']}\n" in plain
    assert sealed(opened) == []

    (tmp_path / "wrong").write_text("not the password\n")
    monkeypatch.setenv(vault.PASSWORD_FILE, str(tmp_path / "wrong"))
    with pytest.raises(InventoryError, match=r"group_vars/all/vault.yml: .*does not open"):
        load(target).host_vars(host)


def test_a_vault_file_that_stays_closed_is_named(tmp_path, monkeypatch):
    """Without the password, every vault file read is listed as sealed, whatever its
    variables are named: the pyinfra engine stops on it (pyinfra_deploy/deploy.py)
    instead of deploying without them; with the password, none is."""
    target = tmp_path / "env1"
    newenv.create(target, tmp_path / "pw")
    extra = target / "group_vars/appservers/app_secrets.yml"
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_text(
        vault.encrypt("python_app_secret_env: {API_TOKEN: t}\n", "env1", tmp_path / "pw")
    )
    monkeypatch.delenv(vault.PASSWORD_FILE, raising=False)
    closed = load(target)
    assert extra in closed.sealed_files
    assert target / "group_vars/all/vault.yml" in closed.sealed_files
    monkeypatch.setenv(vault.PASSWORD_FILE, str(tmp_path / "pw"))
    opened = load(target)
    assert opened.sealed_files == []
    (app,) = opened.members["appservers"][:1]
    assert opened.host_vars(app)["python_app_secret_env"] == {"API_TOKEN": "t"}


@pytest.mark.parametrize("example", ["production", "staging"])
def test_a_copy_of_an_example_opens_with_its_own_vault_and_passes_preflight(
    tmp_path, monkeypatch, example
):
    """The examples' vaults are placeholders nobody can open: --from gives the copy a vault
    of its own with every name the example uses, and nothing else of it changes."""
    source = ROOT / "inventory" / example
    target = tmp_path / "mine"
    newenv.main([str(target), "--from", str(source), "--vault-password-file", str(tmp_path / "pw")])
    plain = vault.decrypt(target / "group_vars/all/vault.yml", tmp_path / "pw")
    used = {n for p in source.rglob("*.yml") for n in newenv.VAULT_NAME.findall(p.read_text())}
    values = yaml.safe_load(plain)
    assert set(values) == used
    assert len(set(values.values())) == len(values)
    # TLS names get PEM material a CA of the copy's own signed (pgBackRest's, both sides)
    pem = {n: v for n, v in values.items() if "_tls_" in n}
    assert pem, "the example names no TLS material"
    assert all(v.startswith("-----BEGIN ") for v in pem.values()), sorted(pem)
    for path in source.rglob("*.yml"):
        if path.name != "vault.yml":
            assert (target / path.relative_to(source)).read_text() == path.read_text()
    monkeypatch.setenv(vault.PASSWORD_FILE, str(tmp_path / "pw"))
    for db in load(target).members["databases"]:
        assert sealed(load(target).host_vars(db)) == []
    assert findings(target) == []


def test_a_local_environment_names_its_containers_and_leaves_only_the_app_to_fill(tmp_path):
    target = tmp_path / "trial"
    newenv.create(target, tmp_path / "pw", local=True, port=8300)
    loaded = load(target)
    assert {h: loaded.host_vars(h)["ansible_host"] for h in loaded.members["all"]} == {
        "lb1.trial": "trial-lb1",
        "app1.trial": "trial-app1",
        "redis1.trial": "trial-redis1",
    }
    assert loaded.host_vars("lb1.trial")["sandbox_published_ports"] == ["127.0.0.1:8300:80"]
    assert loaded.host_vars("app1.trial")["sandbox_network"] == "trial"
    assert [f"{f.host} {f.variable}" for f in findings(target)] == [
        "app1.trial python_app_entrypoint",
        "app1.trial python_app_src",
    ]
