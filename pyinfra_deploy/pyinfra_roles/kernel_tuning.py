"""kernel_tuning as the role does it: the sysctl drop-in applied (inside a container,
the per-network-namespace keys only), the services' NOFILE limit, the PAM limits."""

from __future__ import annotations

from pyinfra.operations import server
from pyinfra_roles.common import put, this

from webtier.files import configs
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    sysctl, limits, pam = mine
    put(sysctl)
    netns = set(this.v["__kernel_tuning_netns_keys"])
    for line in sysctl.content.splitlines():
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or line.lstrip().startswith("#") or (facts.in_container and key not in netns):
            continue  # inside a container global keys would change the machine
        numbers = [int(n) for n in value.split()]
        server.sysctl(
            name=f"Apply {key}", key=key, value=numbers if len(numbers) > 1 else numbers[0]
        )
    limits_op = put(limits)
    put(pam)
    server.shell(
        name="Reexecute the service manager",
        commands=["systemctl daemon-reexec"],
        _if=limits_op.did_change,
    )
