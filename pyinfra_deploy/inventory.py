"""pyinfra inventory read from an Ansible inventory directory by webtier.model.inventory
(pyinfra 3 has no Ansible inventory connector), so both engines share one inventory.

    WEBTIER_INVENTORY=inventory/sandbox pyinfra pyinfra_deploy/inventory.py pyinfra_deploy/deploy.py

Every inventory group becomes a pyinfra group of the same name. A host Ansible reaches
through the container engine (``ansible_connection: community.docker.docker``) is
reached with pyinfra's docker connector (``@docker/<container>``, the container being
``ansible_host``); any other host over SSH as ``ansible_user``. Each host carries
``webtier_host``, its inventory name, which the deploy reads everything else by.
"""

from __future__ import annotations

import os

from webtier.checks import preflight
from webtier.model.inventory import load

WEBTIER_INVENTORY = os.environ.get("WEBTIER_INVENTORY", "inventory/sandbox")
# Several sources, separated by ':' (as a later -i source in Ansible): each one read after
# the one before it, its host variables winning (a scenario's generated TLS material).
_inventory = load(*WEBTIER_INVENTORY.split(os.pathsep))


def _preflight() -> None:
    """site.yml's first play, before any host is contacted: stop on any finding."""
    findings = preflight.run(_inventory.all_host_vars(), _inventory.members)
    if findings:
        raise SystemExit(preflight.report(findings))


_preflight()


def _host(name: str) -> tuple[str, dict]:
    hostvars = _inventory.host_vars(name)
    data = {"webtier_host": name, "webtier_inventory": WEBTIER_INVENTORY}
    if str(hostvars.get("ansible_connection", "")).endswith("docker"):
        return f"@docker/{hostvars.get('ansible_host', name)}", data
    data |= {
        "ssh_user": hostvars.get("ansible_user"),
        "_sudo": bool(hostvars.get("ansible_become")),
    }
    return str(hostvars.get("ansible_host", name)), data


for _group in _inventory.groups:
    if _group != "all" and _inventory.group_hosts(_group):
        globals()[_group] = [_host(h) for h in _inventory.group_hosts(_group)]
