"""webtier.model.inventory reads an inventory exactly as Ansible does (checked against Ansible)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from webtier import ROOT
from webtier.model.inventory import InventoryError, load

ENVIRONMENTS = sorted(p for p in (ROOT / "inventory").iterdir() if (p / "hosts.yml").exists())


def ansible_inventory(path: Path) -> dict:
    out = subprocess.run(
        ["ansible-inventory", "-i", str(path), "--list"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    listed = json.loads(out)
    # With inject_facts_as_vars = false (ansible.cfg), ansible-inventory adds an empty
    # ansible_local (the host's local facts, none gathered) to every host: not a
    # variable of the inventory.
    for hostvars in listed["_meta"]["hostvars"].values():
        if hostvars.get("ansible_local") == {}:
            del hostvars["ansible_local"]
    return listed


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def layered(tmp_path):
    """An inventory where every precedence rule decides some variable."""
    return write(
        tmp_path,
        {
            "hosts.yml": """
            all:
              vars: {v_all_inline: inline, v_override: all-inline}
              children:
                web:
                  vars: {v_override: web-inline, v_depth: web}
                  hosts:
                    w1: {v_override: host-inline}
                    w2:
                  children:
                    edge:
                      vars: {v_depth: edge}
                      hosts: {w2: }
                alpha:
                  vars: {v_same_depth: alpha}
                  hosts: {w1: , w2: }
                zulu:
                  vars: {v_same_depth: zulu}
                  hosts: {w1: }
            """,
            "group_vars/all.yml": "v_override: all-file\nv_file: all\n",
            "group_vars/web/10-a.yml": "v_override: web-file-a\n",
            "group_vars/web/20-b.yml": "v_override: web-file-b\nv_split: b\n",
            "host_vars/w2.yml": "v_override: w2-file\n",
        },
    )


def test_precedence_matches_ansible(layered):
    ours = load(layered).raw_host_vars
    theirs = ansible_inventory(layered)["_meta"]["hostvars"]
    assert ours == theirs
    # The rules above, spelled out:
    assert ours["w1"]["v_override"] == "host-inline"  # host beats groups
    assert ours["w2"]["v_override"] == "w2-file"  # host_vars beats inline and groups
    assert ours["w2"]["v_depth"] == "edge"  # a deeper group beats its parent
    assert ours["w1"]["v_same_depth"] == "zulu"  # same depth: later name wins


def ansible_members(listing: dict, group: str) -> set[str]:
    node = listing.get(group, {})
    members = set(node.get("hosts", []))
    for child in node.get("children", []):
        members |= ansible_members(listing, child)
    return members


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=[p.name for p in ENVIRONMENTS])
def test_every_environment_matches_ansible(env, tmp_path):
    # Without the vault password Ansible cannot read the vault files, and this loader
    # skips them: compare the rest, on a copy without them.
    copy = tmp_path / env.name
    shutil.copytree(env, copy, ignore=shutil.ignore_patterns("vault.yml"))
    ours = load(copy)
    theirs = ansible_inventory(copy)
    assert ours.raw_host_vars == theirs["_meta"]["hostvars"]
    for group in ours.groups:
        assert set(ours.group_hosts(group)) == ansible_members(theirs, group), group


def test_expressions_resolve_like_ansible():
    env = ROOT / "inventory" / "sandbox"
    result = subprocess.run(
        ["ansible", "all", "-i", str(env), "-m", "ansible.builtin.debug", "-a", "var=ansible_host"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={
            **os.environ,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
        },
    )
    # Each host's result, however the strategy groups them into task entries.
    tasks = {
        host: answer
        for task in json.loads(result.stdout)["plays"][0]["tasks"]
        for host, answer in task["hosts"].items()
    }
    inventory = load(env)
    for host in inventory.hosts:
        assert inventory.host_vars(host)["ansible_host"] == tasks[host]["ansible_host"]


def test_magic_variables(layered):
    inventory = load(layered)
    assert inventory.group_names("w2") == ["alpha", "edge", "web"]
    assert inventory.host_vars("w2")["groups"]["web"] == ["w1", "w2"]


def test_a_self_referencing_variable_is_an_error(tmp_path):
    write(tmp_path, {"hosts.yml": "all:\n  hosts:\n    h: {a: '{{ b }}', b: '{{ a }}'}\n"})
    with pytest.raises(InventoryError, match="refers to itself"):
        load(tmp_path).host_vars("h")


def test_vault_files_are_skipped(tmp_path):
    write(
        tmp_path,
        {
            "hosts.yml": "all:\n  hosts:\n    h:\n",
            "group_vars/all/vault.yml": "$ANSIBLE_VAULT;1.2;AES256;prod\n6162\n",
            "group_vars/all/main.yml": "plain: 1\n",
        },
    )
    assert load(tmp_path).raw_host_vars == {"h": {"plain": 1}}


def test_a_malformed_inventory_names_the_file(tmp_path):
    write(tmp_path, {"hosts.yml": "web:\n  hosts: {h: }\n"})
    with pytest.raises(InventoryError, match=r"hosts\.yml: the top level must be"):
        load(tmp_path)
