"""Both engines write the same config files: Ansible's template module (through
playbooks/render.yml) and the pyinfra path (webtier.files.configs) render every environment
to disk here, byte for byte the same. (Runs ansible-playbook once per environment: it
lives with the other tests that run the engines, not with the unit tests.)"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from inventories import CASES, tree, without_vault

from webtier import ROOT
from webtier.files import configs
from webtier.model.inventory import load
from webtier.model.topology import roles_of


def ansible_render(sources: list[Path], out: Path) -> None:
    argv = ["ansible-playbook", "playbooks/render.yml", "-e", f"webtier_render_dir={out}"]
    for source in sources:
        argv += ["-i", str(source)]
    # Ansible's own linear strategy, not Mitogen: `make test` runs this stage at the lowest
    # CPU priority beside the Molecule lanes, and Mitogen gives a local interpreter a fixed
    # 30 s to start (mitogen.parent.Connection.connect_timeout, not an Ansible setting), which
    # a starved run once exceeded (hosts UNREACHABLE). The strategy moves files, it does not
    # render them: the template action renders on the controller under either strategy.
    env = {**os.environ, "ANSIBLE_STRATEGY": "linear"}
    proc = subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=1800
    )
    why = "\n".join(re.findall(r"^(?:fatal|failed): .*(?:\n {4,}.*)*", proc.stdout, re.M))
    assert proc.returncode == 0, why[:3000] + proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.parametrize(("name", "sources"), CASES, ids=[c[0] for c in CASES])
def test_both_engines_write_byte_identical_files(tmp_path, name, sources):
    copies = [without_vault(ROOT / s, tmp_path / "inventory" / s) for s in sources]
    ansible_render(copies, tmp_path / "ansible")
    inventory = load(ROOT / sources[0], *(ROOT / s for s in sources[1:]))
    written = configs.render(inventory, tmp_path / "pyinfra")

    ansible, pyinfra = tree(tmp_path / "ansible"), tree(tmp_path / "pyinfra")
    assert sorted(ansible) == sorted(pyinfra)
    different = [path for path in ansible if ansible[path] != pyinfra[path]]
    assert not different, different
    # Every host got files of each of its roles that always writes some (a config per
    # tier, none left out by both), and of no other role. (A role whose every file is
    # conditional may have nothing to do: pgbackrest on a database host without a
    # repository.)
    manifest = configs.manifest()
    for host in inventory.hosts:
        roles = set(roles_of(host, inventory.members)) & set(manifest)
        always = {r for r in roles if any("when" not in spec for spec in manifest[r])}
        wrote = {f.role for h, f in written if h == host}
        assert always <= wrote <= roles, (host, sorted(roles), sorted(wrote))
