"""The pyinfra engine from wherever the collection is installed (``webtier-pyinfra``).

    webtier-pyinfra inventory/staging [--vault-password-file F] [pyinfra options: -y --dry]

runs pyinfra with the collection's own inventory reader and deploy
(``pyinfra_deploy/`` beside its roles and templates) over an Ansible inventory
directory: the same hosts, variables, preflight and files as ``site.yml``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from webtier import ROOT
from webtier.model import vault


def command(options: Sequence[str]) -> list[str]:
    deploy = ROOT / "pyinfra_deploy"
    return ["pyinfra", *options, str(deploy / "inventory.py"), str(deploy / "deploy.py")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webtier-pyinfra", description=__doc__.split("\n")[0])
    parser.add_argument("inventory", type=Path, help="an Ansible inventory directory")
    parser.add_argument(
        "--vault-password-file",
        type=Path,
        help="the password of the inventory's vault (its secrets are written to the hosts)",
    )
    args, options = parser.parse_known_args(argv)
    if not args.inventory.is_dir():
        parser.error(f"{args.inventory} is not an inventory directory")
    if shutil.which("pyinfra") is None:
        parser.error("pyinfra is not installed: pip install 'webtier[pyinfra]'")
    argv_ = command(options)
    # the deploy reads the inventory by this name (pyinfra_deploy/inventory.py)
    os.environ["WEBTIER_INVENTORY"] = str(args.inventory.resolve())
    # The collection, found here: under pyinfra (gevent) the search would ask Ansible's
    # configuration again, which resolves names through gevent's resolver.
    os.environ["WEBTIER_ROOT"] = str(ROOT)
    if args.vault_password_file:  # the inventory loader opens the vault with it
        os.environ[vault.PASSWORD_FILE] = str(args.vault_password_file.resolve())
    os.execvp(argv_[0], argv_)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
