"""The render path both engines share (webtier.configs): the render command, what it
reads from the inventory, how the Ansible render task and pyinfra reach it. The parity
of the two engines' files, which runs Ansible, is tests/engines/test_parity.py."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml
from inventories import CASES, tree, without_vault

from webtier import ROOT, configs
from webtier.capacity import roles_of
from webtier.inventory import load


def test_a_change_in_the_inventory_reaches_the_rendered_files(tmp_path):
    """The render reads the inventory (not a cached or fixed text): a changed sizing
    variable changes exactly the file that holds it."""
    inventory = without_vault(ROOT / "inventory/sandbox", tmp_path / "inv")
    before = configs.render(load(inventory), tmp_path / "before")
    nginx = inventory / "group_vars/loadbalancers/nginx.yml"
    nginx.write_text(nginx.read_text() + "\nnginx_worker_connections: 12288\n")
    configs.render(load(inventory), tmp_path / "after")
    a, b = tree(tmp_path / "before"), tree(tmp_path / "after")
    changed = sorted(p for p in a if a[p] != b[p])
    assert changed == ["lb1/etc/nginx/nginx.conf"]
    assert b"worker_connections 12288;" in b["lb1/etc/nginx/nginx.conf"]
    assert len(before) == len(a)


def test_the_render_writes_only_under_out_and_secrets_for_their_owner(tmp_path):
    inventory = without_vault(ROOT / "inventory/sandbox", tmp_path / "inv")
    written = configs.render(load(inventory), tmp_path / "out")
    for host, file in written:
        mode = (tmp_path / "out" / host / file.dest.lstrip("/")).stat().st_mode & 0o777
        assert mode == (0o600 if file.secret else 0o644), (host, file.dest, oct(mode))
    assert any(file.secret for _, file in written)
    # A host whose name climbs out of the directory: refused before anything is written.
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("redis1:", "../../escaped:", 1))
    with pytest.raises(ValueError, match="would be written outside"):
        configs.render(load(inventory), tmp_path / "again")
    assert not (tmp_path / "escaped").exists()
    assert not (tmp_path / "again").exists()


def test_the_render_command_writes_every_host(tmp_path):
    proc = subprocess.run(
        ["python", "-m", "webtier.configs", "inventory/production", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    hosts = sorted(p.name for p in tmp_path.iterdir())
    assert hosts == sorted(load(ROOT / "inventory/production").hosts)
    sentinel = (tmp_path / "redis2.prod.example.internal/etc/redis/sentinel.conf").read_text()
    assert "sentinel monitor" in sentinel
    # Secrets stay in the vault: a render shows where they go, never what they are.
    env = (tmp_path / "app1.prod.example.internal/etc/webtier/apps/demo.env").read_text()
    secret = (tmp_path / "app1.prod.example.internal/etc/webtier/apps/demo.secret.env").read_text()
    assert "<vault:vault_redis_app_password>" in env + secret


def test_the_render_command_names_a_broken_inventory(tmp_path):
    (tmp_path / "hosts.yml").write_text("all:\n  hostz: {}\n")
    proc = subprocess.run(
        ["python", "-m", "webtier.configs", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1
    assert "unknown keys ['hostz']" in proc.stderr


def tasks_of(items: list) -> list[dict]:
    """Every task of a task file, those inside blocks included."""
    found = []
    for task in items or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found += tasks_of(task.get(key, []))
    return found


def test_each_roles_template_tasks_take_their_files_from_the_manifest():
    """The manifest and the roles cannot drift: a role's template tasks take template,
    dest, owner, group and mode from templates/files.yml (webtier_role_places), and
    every file listed for the role is written by one of them."""
    for role, specs in configs.manifest().items():
        text = ""
        for path in (ROOT / "roles" / role / "tasks").glob("*.yml"):
            text += path.read_text()
            for task in tasks_of(yaml.safe_load(path.read_text())):
                args = task.get("ansible.builtin.template")
                if not args:
                    continue
                file = re.fullmatch(
                    rf"\{{\{{ __{role}_templates \}}\}}/\{{\{{ (__file|item)\.template \}}\}}",
                    args["src"],
                )
                assert file, (role, task["name"], args["src"])
                for key in ("owner", "group", "mode"):
                    assert args[key] == f"{{{{ {file[1]}.{key} }}}}", (role, task["name"], key)
                assert f"{file[1]}.dest" in args["dest"], (role, task["name"])
        for spec in specs:
            named = f"__{role}_files['{spec['template']}']" in text
            # nginx writes its own tree (every file under /etc/nginx) in one looped task
            tree = role == "nginx" and spec["dest"].startswith("/etc/nginx/")
            assert named or tree, (role, spec["template"])


def test_the_ansible_render_task_passes_every_derived_variable():
    """playbooks/tasks/render-files.yml names each variable webtier.configs derives (Ansible
    cannot take a variable's name from data); a new derived value must be added there."""
    tasks = yaml.safe_load((ROOT / "playbooks/tasks/render-files.yml").read_text())
    passed = set(next(t for t in tasks if "ansible.builtin.template" in t)["vars"])
    returned = set()
    for _name, sources in CASES:
        inventory = load(ROOT / sources[0], *(ROOT / s for s in sources[1:]))
        hostvars = inventory.all_host_vars()
        for host in inventory.hosts:
            roles = roles_of(host, inventory.members)
            v = configs.variables(inventory, host, roles)
            for role in roles:
                for spec in configs.role_files(
                    role, v, configs.Facts.assumed(v), inventory.members, hostvars
                ):
                    returned |= set(spec["vars"])
    assert returned, "no derived variable at all: the check would pass vacuously"
    assert returned <= passed, returned - passed


def pyinfra_inventory(env: str) -> dict:
    """The groups pyinfra_deploy/inventory.py gives pyinfra for ``inventory/<env>``."""
    script = (
        "import json, runpy; g = runpy.run_path('pyinfra_deploy/inventory.py');"
        "print(json.dumps({k: v for k, v in g.items() if isinstance(v, list) and k[0] != '_'}))"
    )
    proc = subprocess.run(
        ["python", "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "WEBTIER_INVENTORY": f"inventory/{env}"},
        check=True,
    )
    return json.loads(proc.stdout)


def test_pyinfra_reaches_sandbox_hosts_through_the_container_engine():
    groups = pyinfra_inventory("sandbox")
    assert [name for name, _ in groups["loadbalancers"]] == [
        "@docker/webtier-sandbox-lb1",
        "@docker/webtier-sandbox-lb2",
    ]
    apps = {data["webtier_host"] for _, data in groups["appservers"]}
    assert apps == {"app1", "app2", "app3", "app4", "app5", "app6"}


def test_pyinfra_reaches_remote_hosts_over_ssh_as_the_deploy_user_with_sudo():
    groups = pyinfra_inventory("production")
    inventory = load(ROOT / "inventory/production")
    for group, members in groups.items():
        assert [data["webtier_host"] for _, data in members] == inventory.group_hosts(group)
    name, data = groups["redis"][0]
    hostvars = inventory.host_vars(data["webtier_host"])
    assert name == hostvars.get("ansible_host", data["webtier_host"])
    assert data["ssh_user"] == hostvars["ansible_user"]
    assert data["_sudo"] is True


def test_pyinfra_stops_before_any_host_on_a_preflight_finding(tmp_path):
    inventory = without_vault(ROOT / "inventory/sandbox", tmp_path / "inv")
    kernel = inventory / "group_vars/all/kernel.yml"
    kernel.write_text(
        kernel.read_text().replace(
            "kernel_tuning_somaxconn: 65535", "kernel_tuning_somaxconn: 1024"
        )
    )
    proc = subprocess.run(
        ["python", "pyinfra_deploy/inventory.py"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "WEBTIER_INVENTORY": str(inventory)},
        check=False,
    )
    assert proc.returncode != 0
    assert "Preflight found" in proc.stderr
    assert "net.core.somaxconn=1024" in proc.stderr
