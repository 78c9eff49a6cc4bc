"""Secret scan of the repository: detect-secrets with a reviewed baseline, plus this
project's rule that a secret-named value outside the sandbox points into a vault.

- detect-secrets (its plugins and filters, and this project's own plugins in
  webtier/checks/secret_plugins.py) runs with the settings recorded in ``.secrets.baseline``;
  what the baseline lists was reviewed (``detect-secrets audit .secrets.baseline``) and
  is not reported again.
- The vault rule reads every YAML file as data, so that a literal in a block scalar
  (``password: >-`` and the value on the next line) is found, which a line scanner
  misses; ``!vault`` values are understood (detect-secrets' own YAML reader stops at
  them and falls back to lines).
- inventory/sandbox holds throwaway passwords for local containers: not scanned
  (the baseline's exclude-files filter, and here).

``python -m webtier.checks.secretscan`` scans the files git knows (tracked, or new and not
ignored) and exits 1 with one line per finding. Regenerate the baseline after a
review with ``detect-secrets scan --baseline .secrets.baseline``.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml
from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import transient_settings

from webtier import ROOT
from webtier.checks.secret_plugins import SECRET_KEY

BASELINE = ".secrets.baseline"
SANDBOX = "inventory/sandbox/"
YAML_SUFFIXES = {".yml", ".yaml"}
_SECRET_NAME = re.compile(rf"(?i){SECRET_KEY}")


class _Vaulted(str):
    """An inline ``!vault`` value: encrypted, so not a finding."""


class _Loader(yaml.SafeLoader):
    """YAML as Ansible writes it: ``!vault`` and ``!unsafe`` are values, not errors."""


_Loader.add_constructor("!vault", lambda loader, node: _Vaulted(loader.construct_scalar(node)))
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def literal_secrets(data, where: str = "") -> list[str]:
    """Keys (dotted paths) of a YAML document whose secret-named value is a literal."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if (
                _SECRET_NAME.fullmatch(str(key))
                and isinstance(value, str)
                and not isinstance(value, _Vaulted)
                and value.strip()
                and "{{" not in value
            ):
                found.append(path)
            found += literal_secrets(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += literal_secrets(value, f"{where}[{i}]")
    return found


def vault_rule(root: Path, name: str) -> list[str]:
    text = (root / name).read_text(errors="replace")
    if text.startswith("$ANSIBLE_VAULT"):
        return []
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as error:
        return [f"{name}: not YAML, so not checked ({str(error).splitlines()[0]})"]
    return [
        f"{name}: {key} is a literal secret: put it in the vault (a reference: {{{{ vault_... }}}})"
        for document in documents
        for key in literal_secrets(document)
    ]


def scan(root: Path, names: list[str]) -> list[str]:
    """Every finding in the files ``names`` (relative to root), as 'path: what'."""
    sandbox = ROOT / SANDBOX
    names = [
        n
        for n in names
        if (root / n).is_file()  # a symlink into the sandbox is the sandbox's file
        and not (root / n).resolve().is_relative_to(sandbox)
        and not n.startswith(SANDBOX)
    ]
    recorded = json.loads((ROOT / BASELINE).read_text())
    settings = {key: recorded[key] for key in ("plugins_used", "filters_used")}
    # This project's plugins are recorded by their path in the repository.
    for plugin in settings["plugins_used"]:
        if plugin.get("path", "").startswith("file://"):
            plugin["path"] = f"file://{ROOT / plugin['path'].removeprefix('file://')}"
    # detect-secrets matches its exclude-files filter against the path as given:
    # scanned from the root, with relative names, as its own command does.
    with contextlib.chdir(root), transient_settings(settings):
        found = SecretsCollection()
        for name in names:
            found.scan_file(name)
    if root == ROOT:
        found = found - SecretsCollection.load_from_baseline(recorded)
    findings = [f"{filename}:{secret.line_number}: {secret.type}" for filename, secret in found]
    for name in names:
        if Path(name).suffix in YAML_SUFFIXES:
            findings += vault_rule(root, name)
    return sorted(findings)


def repository_files(root: Path = ROOT) -> list[str]:
    """The files git knows: tracked, or new and not ignored."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    ).stdout
    return sorted({name for name in out.split("\0") if name})


def main() -> int:
    findings = scan(ROOT, repository_files())
    for line in findings:
        print(line)
    print(f"secret scan: {len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
