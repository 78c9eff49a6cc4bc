"""Shared logic of the webtier stack, used by both engines (Ansible and pyinfra)."""

from pathlib import Path

#: Repository root when run from a checkout (templates/, inventory/, roles/ live here).
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
