"""firewall as the role does it: the fail-closed table and the rules, each checked with
nft -c first, loaded at boot by its unit and reloaded when they change."""

from __future__ import annotations

from pyinfra.api.exceptions import DeployError
from pyinfra.operations import files, server, systemd
from pyinfra_roles.common import fact, packages, put, this

from webtier import ROOT
from webtier.files import configs
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    if not this.v["firewall_enabled"]:
        raise DeployError(f"{this.name}: firewall_enabled: false is converged by site.yml only")
    packages("Install nftables", ["nftables"])
    rules, closed = sorted(mine, key=lambda f: f.template.endswith("closed.nft.j2"))
    put(closed, "nft -c -f %s")
    rules_op = put(rules, "nft -c -f %s")
    unit = files.put(
        name="Install webtier-firewall.service",
        src=str(ROOT / "roles/firewall/files/webtier-firewall.service"),
        dest="/etc/systemd/system/webtier-firewall.service",
        mode="0644",
    )
    systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)
    server.shell(
        name="Enable the unit at the target its new version names",
        commands=["systemctl reenable webtier-firewall"],
        _if=unit.did_change,
    )
    loaded = fact("nft list table inet webtier >/dev/null 2>&1 && echo yes || echo no")
    started = systemd.service(
        name="Keep the firewall enabled and loaded",
        service="webtier-firewall",
        running=True,
        enabled=True,
        restarted=loaded != "yes",
    )
    systemd.service(
        name="Reload the firewall",
        service="webtier-firewall",
        reloaded=True,
        _if=lambda: not started.did_change() and rules_op.did_change(),
    )
