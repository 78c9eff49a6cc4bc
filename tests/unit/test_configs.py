"""The render path both engines share (webtier.files.configs): the render command, what it
reads from the inventory, how the Ansible render task and pyinfra reach it. The parity
of the two engines' files, which runs Ansible, is tests/engines/test_parity.py."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml
from inventories import tree, without_vault

from webtier import ROOT
from webtier.files import configs
from webtier.files.facts import Facts
from webtier.model.inventory import load


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
        ["python", "-m", "webtier.files.configs", "inventory/production", "--out", str(tmp_path)],
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
        ["python", "-m", "webtier.files.configs", str(tmp_path), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1
    assert "unknown keys ['hostz']" in proc.stderr


def test_the_render_names_a_variable_that_does_not_resolve(tmp_path):
    """A value whose expression does not resolve is not rendered as text: the render
    stops naming the file and the variable (preflight refuses it the same way)."""
    inventory = without_vault(ROOT / "inventory/sandbox", tmp_path / "inv")
    nginx = inventory / "group_vars/loadbalancers/nginx.yml"
    nginx.write_text(nginx.read_text() + "\nnginx_client_max_body_size: '{{ nowhere }}'\n")
    with pytest.raises(ValueError, match=r"nginx_client_max_body_size does not resolve"):
        configs.render(load(inventory), tmp_path / "out")


def tasks_of(items: list) -> list[dict]:
    """Every task of a task file, those inside blocks included."""
    found = []
    for task in items or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found += tasks_of(task.get(key, []))
    return found


def test_each_role_writes_its_files_through_the_role_files_action():
    """The manifest and the roles cannot drift: a role writes its config files with the
    role_files action only (template, dest, owner, group, mode and what the role
    derives, all from webtier.files.configs, as the pyinfra engine), never with a template
    task of its own, and every file templates/files.yml lists for it is written."""
    for role, specs in configs.manifest().items():
        written = set()
        for path in (ROOT / "roles" / role / "tasks").glob("*.yml"):
            for task in tasks_of(yaml.safe_load(path.read_text())):
                assert "ansible.builtin.template" not in task, (role, task["name"])
                action = task.get("webtier.stack.role_files")
                if action:
                    assert action["role"] == role, (role, task["name"])
                    wanted = action["template"]
                    written |= {wanted} if isinstance(wanted, str) else set(wanted)
        assert written == {spec["template"] for spec in specs}, role


def test_every_role_renders_through_the_action_its_tasks_write_with():
    """playbooks/render.yml (the parity test's Ansible side) renders each role's files
    with the role_files action, its defaults and vars in scope: no list of derived names
    to keep in step with webtier.files.configs."""
    tasks = yaml.safe_load((ROOT / "playbooks/tasks/render-files.yml").read_text())
    (task,) = tasks
    assert task["webtier.stack.role_files"]["role"] == "{{ __webtier_render_role }}"
    for role in configs.manifest():
        render = yaml.safe_load((ROOT / "roles" / role / "tasks/render.yml").read_text())
        assert "playbooks/tasks/render-files.yml" in render[0]["ansible.builtin.include_tasks"]


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


def test_a_role_derives_from_what_the_host_said_and_assumes_only_the_rest():
    """Under Ansible a role's facts are kernel_tuning_effective and what the role read
    itself (webtier.files.facts.Facts.read); a fact neither gives is the inventory's, as in
    a render, and a fact the package does not know is refused by name."""
    effective = {"cpus": 6, "nofile_hard": 4096, "in_container": True, "memory_mb": 900}
    facts = Facts.read(
        {"webtier_cpus": 2},
        {**effective, "release": "bookworm"},
        {"getent": {"lb1": "10.0.0.7 STREAM lb1\n10.0.0.7 DGRAM\n"}, "pid1_nofile_hard": "None"},
    )
    assert (facts.cpus, facts.nofile_hard, facts.memtotal_mb, facts.release) == (
        6,
        4096,
        900,
        "bookworm",
    )
    assert facts.resolved == {"lb1": ["10.0.0.7"]}
    assert facts.pid1_nofile_hard is None
    assert Facts.read({"webtier_cpus": 3}).cpus == 3
    with pytest.raises(ValueError, match="no such fact cpu_count"):
        Facts.read({}, None, {"cpu_count": 4})


def test_a_roles_tasks_read_what_it_derives_without_its_prefix():
    assert configs.short_names(
        "nginx", {"nginx_sites_resolved": [], "__nginx_x": 1, "other": 2}
    ) == {"sites_resolved": [], "x": 1, "other": 2}
