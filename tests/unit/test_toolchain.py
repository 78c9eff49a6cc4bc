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
    for line in (ROOT / "requirements.txt").read_text().splitlines()
    if (match := re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$", line.strip()))
]


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


def test_every_collection_the_code_uses_is_declared():
    declared = {c["name"] for c in COLLECTIONS}
    used = set()
    for path in ROOT.glob("**/*.yml"):
        if ".venv" in path.parts or ".cache" in path.parts:
            continue
        used |= set(re.findall(r"\b(ansible\.posix|community\.[a-z_]+)\.[a-z_]+", path.read_text()))
    assert used <= declared, f"used but not in requirements.yml: {sorted(used - declared)}"


@pytest.mark.parametrize(("name", "version"), PINS, ids=[p[0] for p in PINS])
def test_pinned_package_is_installed_at_its_pin(name, version):
    assert metadata.version(name) == version
