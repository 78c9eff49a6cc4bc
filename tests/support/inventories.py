"""Helpers for tests that render inventories to disk (tests/unit, tests/engines).

- ``without_vault``: a copy of an inventory whose vault holds placeholders instead of
  secrets (what the package renders for a vault variable), readable by Ansible;
- ``tree``: every file under a directory, by relative path, with its bytes;
- ``CASES``: (name, inventory sources) of every environment, of the sandbox under the
  distro-defaults profile (the benchmark's other side), and of every role on its
  documented defaults (tests/inventories/defaults).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from webtier import ROOT

ENVIRONMENTS = sorted(p.name for p in (ROOT / "inventory").iterdir() if (p / "hosts.yml").exists())
CASES = [(env, [f"inventory/{env}"]) for env in ENVIRONMENTS] + [
    ("sandbox+distro-defaults", ["inventory/sandbox", "profiles/distro-defaults"]),
    # every role on its documented defaults (only what each role requires)
    ("defaults", ["tests/inventories/defaults"]),
    # a replicated database set under pg_auto_failover's monitor
    ("database-set", ["tests/inventories/database-set"]),
]
VAULT_REFERENCE = re.compile(r"\bvault_\w+")


def without_vault(source: Path, into: Path) -> Path:
    """A copy of an inventory whose vault holds placeholders instead of secrets: what the
    package renders for a vault variable (``<vault:NAME>``), now readable by Ansible."""
    shutil.copytree(source, into)
    vault = into / "group_vars/all/vault.yml"
    if vault.exists():
        names = sorted(
            {
                n
                for p in source.rglob("*.yml")
                if p.name != "vault.yml"
                for n in VAULT_REFERENCE.findall(p.read_text())
            }
        )
        vault.write_text(yaml.safe_dump({n: f"<vault:{n}>" for n in names}))
    return into


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
