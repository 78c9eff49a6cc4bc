"""The toolchain is what requirements.txt and requirements.yml say, with nothing from Galaxy."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import ansible_collections
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from webtier import ROOT

COLLECTIONS = yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]
PINS = [
    match.groups()
    for name in ("requirements-controller.txt", "requirements.txt")
    for line in (ROOT / name).read_text().splitlines()
    if (match := re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$", line.strip()))
]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())


def installed_collection_version(name: str) -> str:
    namespace, collection = name.split(".")
    for base in ansible_collections.__path__:
        manifest = Path(base, namespace, collection, "MANIFEST.json")
        if manifest.exists():
            return json.loads(manifest.read_text())["collection_info"]["version"]
    pytest.fail(f"collection {name} is not in the installed ansible bundle")


@pytest.mark.parametrize("requirement", COLLECTIONS, ids=[c["name"] for c in COLLECTIONS])
def test_collection_is_in_the_bundle_at_a_satisfying_version(requirement):
    version = installed_collection_version(requirement["name"])
    assert SpecifierSet(requirement["version"]).contains(version), (
        f"{requirement['name']} {version} does not satisfy {requirement['version']}"
    )


def collections_used(paths) -> set[str]:
    pattern = r"\b(ansible\.posix|community\.[a-z_]+)\.[a-z_]+"
    return {m for path in paths for m in re.findall(pattern, path.read_text())}


def test_every_collection_the_code_uses_is_declared():
    declared = {c["name"] for c in COLLECTIONS}
    used = collections_used(
        p for p in ROOT.glob("**/*.yml") if not {".venv", ".cache"} & set(p.parts)
    )
    assert used <= declared, f"used but not in requirements.yml: {sorted(used - declared)}"


def test_the_collection_declares_every_collection_its_roles_and_playbooks_use():
    """What a consumer's ansible-galaxy installs beside webtier.stack: galaxy.yml's
    dependencies, each in the pip bundle at a version that satisfies it."""
    shipped = [*ROOT.glob("roles/*/[!m]*/*.yml"), *ROOT.glob("playbooks/**/*.yml")]
    ignored = {"playbooks/sandbox.yml", "playbooks/loadtest.yml"}  # not in the artifact
    used = collections_used(p for p in shipped if str(p.relative_to(ROOT)) not in ignored)
    assert used <= set(GALAXY["dependencies"]), sorted(used - set(GALAXY["dependencies"]))
    for name, spec in GALAXY["dependencies"].items():
        assert SpecifierSet(spec).contains(installed_collection_version(name)), name


def test_the_package_and_the_collection_carry_one_version():
    assert metadata.version("webtier") == GALAXY["version"]


@pytest.mark.parametrize(("name", "version"), PINS, ids=[p[0] for p in PINS])
def test_pinned_package_is_installed_at_its_pin(name, version):
    assert metadata.version(name) == version
