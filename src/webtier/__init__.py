"""Shared logic of the webtier stack, used by both engines (Ansible and pyinfra).

The package reads the collection it belongs to: the roles' defaults, argument specs and
vars, and the templates both engines render. ROOT is that collection's root:

1. ``WEBTIER_ROOT``, when set;
2. the source tree the package is imported from: this repository (which is the
   collection ``webtier.stack``, galaxy.yml two levels above this file), or an
   installed collection's own copy (MANIFEST.json there);
3. for a package installed by pip from the collection, the collection installed on
   Ansible's collection paths (``collections_path`` of the ansible.cfg in force,
   ``ANSIBLE_COLLECTIONS_PATH``, and Python's path, as Ansible searches them).
"""

import os
import sys
from pathlib import Path

#: The collection this package belongs to (galaxy.yml's namespace and name).
COLLECTION = ("webtier", "stack")


def _collection_paths() -> list[Path]:
    try:  # the paths Ansible itself searches, from the ansible.cfg in force
        from ansible import constants  # noqa: PLC0415 (only when the tree is not found)

        configured = list(constants.COLLECTIONS_PATHS)
    except ImportError:
        configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep)
    return [Path(p).expanduser() for p in [*configured, *sys.path] if p]


def _root() -> Path:
    if os.environ.get("WEBTIER_ROOT"):
        return Path(os.environ["WEBTIER_ROOT"]).resolve()
    tree = Path(__file__).resolve().parents[2]
    # galaxy.yml in a source tree, MANIFEST.json in an installed collection
    if (tree / "galaxy.yml").is_file() or (tree / "MANIFEST.json").is_file():
        return tree
    for base in _collection_paths():
        candidate = base.joinpath("ansible_collections", *COLLECTION)
        if (candidate / "MANIFEST.json").is_file() or (candidate / "galaxy.yml").is_file():
            return candidate.resolve()
    raise ImportError(
        "webtier: the collection webtier.stack is not installed where Ansible looks "
        "(ansible-galaxy collection install webtier-stack-<version>.tar.gz), and "
        "WEBTIER_ROOT does not name it"
    )


#: The collection's root: roles/, templates/, playbooks/, files/ live here (and, in
#: this repository, inventory/ and the tests).
ROOT = _root()
#: The templates both engines render: the collection's, or ``WEBTIER_TEMPLATES`` (a
#: changed copy, as the broken-template drill renders from).
TEMPLATES = Path(os.environ.get("WEBTIER_TEMPLATES") or ROOT / "templates")
