"""The package's folders are its architecture, and its imports keep to it: the model
(schema, sizing rules, inventory, topology, capacity) imports nothing above it; what
gets written (files) reads the model only; the checks read both; the operations tooling
(ops) may read anything, and nothing on the provisioning path reads it."""

from __future__ import annotations

import ast

from webtier import ROOT

PACKAGE = ROOT / "src" / "webtier"
#: What each layer may import from the package, besides itself and webtier's root.
ALLOWED = {
    "model": set(),
    "files": {"model"},
    "checks": {"model", "files"},
    "ops": {"model", "files", "checks"},
    "": {"model", "files", "checks"},  # the entry points: newenv, pyinfra_cli
}


def imported(path) -> set[str]:
    """The package's layers ``path`` imports (webtier.<layer>...)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "webtier" and len(parts) > 1 and parts[1] in ALLOWED:
                found.add(parts[1])
    return found


def test_each_layer_imports_only_the_layers_below_it():
    checked = 0
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        layer = relative[0] if len(relative) > 1 else ""
        extra = imported(path) - ALLOWED[layer] - {layer}
        assert not extra, f"{path.relative_to(ROOT)} ({layer or 'entry point'}) imports {extra}"
        checked += 1
    assert checked > 20, "no module found: the check would pass vacuously"


def test_the_provisioning_path_never_reads_the_operations_tooling():
    """The roles' plugins and the pyinfra engine (what converges a host) read no ops."""
    for base in ("plugins", "pyinfra_deploy"):
        for path in (ROOT / base).rglob("*.py"):
            assert "ops" not in imported(path), path.relative_to(ROOT)
