"""Ansible Vault files, read and written with Ansible's own library (ansible.parsing.vault,
on every controller): the format ``ansible-vault`` and ``--vault-id`` read, no crypto of
our own. Used by ``webtier-new-env`` (a new environment's vault) and by the inventory
loader when the pyinfra engine deploys an environment whose secrets are in a vault.
"""

from __future__ import annotations

import os
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


def decrypt(text: str, password_file: Path) -> str:
    """The plaintext of a vault file; ValueError when the password does not open it."""
    from ansible.errors import AnsibleError  # noqa: PLC0415
    from ansible.parsing.vault import VaultLib  # noqa: PLC0415

    try:
        return VaultLib([("default", _secret(password_file))]).decrypt(text).decode()
    except AnsibleError as error:
        raise ValueError(f"{password_file} does not open this vault: {error}") from None
