"""Ansible Vault files, read and written with Ansible's own library (ansible.parsing.vault,
on every controller): the format ``ansible-vault`` and ``--vault-id`` read, no crypto of
our own. Used by ``webtier-new-env`` (a new environment's vault) and by the inventory
loader when the pyinfra engine deploys an environment whose secrets are in a vault.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

#: The environment variable naming the vault's password file for the pyinfra engine
#: (``webtier-pyinfra --vault-password-file``), as ``--vault-password-file`` for Ansible.
PASSWORD_FILE = "WEBTIER_VAULT_PASSWORD_FILE"  # pragma: allowlist secret (a variable's name)


def _secret(password_file: Path):
    from ansible.parsing.vault import VaultSecret  # noqa: PLC0415 (controller only)

    return VaultSecret(password_file.read_bytes().strip())


def encrypt(plaintext: str, vault_id: str, password_file: Path) -> str:
    """``plaintext`` as a vault file under ``vault_id`` (``$ANSIBLE_VAULT;1.2;AES256;id``)."""
    from ansible.parsing.vault import VaultLib  # noqa: PLC0415

    secret = _secret(password_file)
    return VaultLib([(vault_id, secret)]).encrypt(plaintext, secret, vault_id=vault_id).decode()


def password_file() -> Path | None:
    """The password file the environment names, if any."""
    name = os.environ.get(PASSWORD_FILE)
    return Path(name).expanduser() if name else None


def decrypt(path: Path, password_file: Path) -> str:
    """The plaintext of the vault file ``path``; ValueError when the password does not
    open it. Read by ``ansible-vault view`` in a process of its own: importing
    ansible-core probes the socket module with a call meant to fail, which under the
    pyinfra engine (gevent) prints a spurious traceback."""
    view = [sys.executable, "-m", "ansible.cli.vault", "view", "--vault-password-file"]
    proc = subprocess.run(
        [*view, str(password_file), str(path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_VAULT_IDENTITY_LIST": "", "ANSIBLE_NOCOLOR": "1"},
    )
    if proc.returncode:
        why = " ".join(proc.stderr.split()) or f"ansible-vault exited {proc.returncode}"
        raise ValueError(f"{password_file} does not open this vault: {why}")
    return proc.stdout
