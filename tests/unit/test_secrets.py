"""No plaintext secret in the repository outside the sandbox inventory.

Secrets of staging and production live in their vaults; role scenarios generate theirs
at run time (ansible.builtin.password into the scenario's ephemeral directory); only
inventory/sandbox holds throwaway plaintext passwords, for local containers. The scan
covers every file git tracks: private keys, known token formats and credentials in
URLs anywhere; in YAML, every secret-named key whose value is a literal.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from webtier import ROOT

ALLOWED = ROOT / "inventory" / "sandbox"
SECRET_NAME = re.compile(r"(password|passwd|secret|token|passphrase|api_?key|private_key)", re.I)
PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    # scheme://user:password@host with a literal password: not {{ ... }}, not $VAR, not
    # <placeholder>, not a *** mask, not the word "password" of a documented URL form.
    "credentials in a URL": re.compile(
        r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:(?![{$<*]|password@)[^@\s/'\"]+@"
    ),
}
YAML_SUFFIXES = {".yml", ".yaml"}


def literal_secrets(data, where: str = "") -> list[str]:
    """Secret-named keys of a YAML document whose value is a literal string."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if (
                SECRET_NAME.search(str(key))
                and isinstance(value, str)
                and value.strip()
                and "{{" not in value
                and not value.startswith("<vault:")
            ):
                found.append(path)
            found += literal_secrets(value, path)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += literal_secrets(value, f"{where}[{i}]")
    return found


def scan(root: Path, files: list[Path]) -> list[str]:
    """Every finding, as 'path: what'."""
    findings = []
    for path in files:
        real = path.resolve()
        if real.is_relative_to(ALLOWED) or not real.is_file():
            continue
        try:
            text = real.read_text()
        except UnicodeDecodeError:
            continue  # binary (images): no text secret
        if text.startswith("$ANSIBLE_VAULT"):
            continue  # encrypted
        name = path.relative_to(root)
        findings += [
            f"{name}: {kind}" for kind, pattern in PATTERNS.items() if pattern.search(text)
        ]
        if path.suffix in YAML_SUFFIXES:
            for document in yaml.safe_load_all(text):
                findings += [f"{name}: {key} is a literal" for key in literal_secrets(document)]
    return findings


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    return [ROOT / name for name in out.split("\0") if name]


def test_the_repository_holds_no_plaintext_secret_outside_the_sandbox():
    files = tracked_files()
    assert len(files) > 100  # the scan saw the repository, not an empty list
    assert scan(ROOT, files) == []


@pytest.mark.parametrize(
    ("name", "text", "finding"),
    [
        ("group_vars/all.yml", "db_password: hunter2\n", "db_password is a literal"),
        ("vars.yml", "app:\n  env:\n    API_KEY: abc123\n", "app.env.API_KEY is a literal"),
        # Assembled here, so that this file itself holds none of them.
        ("id_ed25519", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nAAAA\n", "private key"),
        ("deploy.sh", "export AWS=" + "AKIA" + "ABCDEFGHIJKLMNOP\n", "AWS access key"),
        ("app.env", "REDIS_URL=redis://app:" + "s3cret@redis1:6379/0\n", "credentials in a URL"),
    ],
)
def test_the_scan_finds_a_planted_secret(tmp_path, name, text, finding):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    assert scan(tmp_path, [path]) == [f"{name}: {finding}"]


@pytest.mark.parametrize(
    "text",
    [
        'redis_app_password: "{{ vault_redis_app_password }}"\n',
        'redis_admin_password: ""\n',
        "REDIS_URL: redis://app:{{ redis_app_password }}@redis1:6379/0\n",
        "nginx_tls_certificate_key: /etc/ssl/private/www.key\n",
        "$ANSIBLE_VAULT;1.2;AES256;production\n6162\n",
    ],
)
def test_the_scan_lets_references_and_vaults_pass(tmp_path, text):
    path = tmp_path / "vars.yml"
    path.write_text(text)
    assert scan(tmp_path, [path]) == []
