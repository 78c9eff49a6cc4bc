"""Preflight: everything wrong with an inventory, found on the controller before any host changes.

Two kinds of check, over every host of the inventory at once:

- each role a host will run is given what its ``meta/argument_specs.yml`` accepts
  (types, choices, required values), and no role-prefixed variable is unknown to the
  role (a typo such as ``gunicorn_worker`` would otherwise be ignored silently); the
  app server speaks the app's interface (WSGI or ASGI);
- the capacity model's cross-layer invariants (:func:`webtier.model.capacity.check`):
  backlogs against somaxconn, connections against NOFILE, the app tier's queues
  against the load balancers, Redis clients against the app tier, ...

Ansible runs it as the first play of ``site.yml`` (the ``preflight`` role's action
plugin is a thin wrapper); pyinfra and
``python -m webtier.checks.preflight inventory/<env> [profiles/<profile>]`` run the same
function. Each finding names the host, the variable, its value, the limit and the fix.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import yaml

from webtier import ROOT
from webtier.checks import invariants, nginxscan
from webtier.model import capacity, schema
from webtier.model.inventory import holds, with_defaults

#: Every variable this project reads starts with one of these: its roles' prefixes and
from webtier.model.schema import Finding
from webtier.model.topology import roles_of

#: webtier_ (what the inventory says about a host). Both engines hand preflight these.
PREFIXES = tuple(f"{role}_" for role in schema.MODELS)
# Prefixed variables that are not inventory input: set by the roles while they run
# (facts), or given to a playbook on its command line.
NOT_ARGUMENTS = {
    "kernel_tuning_effective",
    "kernel_tuning_nofile_effective",
    "webtier_render_dir",
}


@cache
def role_options(role: str) -> dict[str, Any]:
    """The options of a role's ``main`` entry point in ``meta/argument_specs.yml``."""
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def arguments(
    host: str, hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """The host's variables against the typed model of every role it runs
    (:mod:`webtier.model.schema`), and every project-prefixed variable known to one of them:
    a typo such as ``gunicorn_worker`` would otherwise be ignored silently."""
    findings = []
    roles = roles_of(host, groups)
    known = {name for role in schema.MODELS for name in schema.MODELS[role].model_fields}
    for name in sorted(hostvars):
        if not name.startswith(PREFIXES) or name in known or name in NOT_ARGUMENTS:
            continue
        role = next((r for r in schema.MODELS if name.startswith(f"{r}_")), "webtier")
        close = difflib.get_close_matches(name, known, n=1)
        where = f"roles/{role}/meta/argument_specs.yml" if role != "webtier" else "README.md"
        findings.append(
            Finding(
                host,
                name,
                schema.shown(name, hostvars[name]),
                f"no {role} variable has this name ({where})",
                f"did you mean {close[0]}?" if close else "remove it",
            )
        )
    for role in ["webtier", *roles]:
        findings += schema.findings(host, role, with_defaults([role], hostvars))
    return findings


#: What webtier-new-env writes where only the user knows the value (webtier.newenv).
PLACEHOLDER = "CHANGE_ME"
#: Variables without the roles' prefixes that preflight reads too (for placeholders):
#: how a host is reached.
CONNECTION = ("ansible_host", "ansible_user", "ansible_port")


def placeholders(host: str, hostvars: Mapping[str, Any]) -> list[Finding]:
    """A value a new environment left for the user to fill in (``CHANGE_ME``)."""

    return [
        Finding(host, name, hostvars[name], "a placeholder left to fill in", "set the real value")
        for name in sorted(hostvars)
        if holds(hostvars[name], PLACEHOLDER)
    ]


def interfaces(
    host: str, hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """The app server speaks the app's interface (WSGI or ASGI)."""
    roles = roles_of(host, groups)
    return invariants.interface(host, roles, with_defaults(roles, hostvars))


#: An inventory host's name: a DNS name's letters (an '_' too, as inventories use it).
HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?")


def host_name(host: str) -> Finding | None:
    """A finding when ``host`` is no host name: it names files, units' peers, the
    sandbox's containers and TLS subjects, and reaches name lookups."""
    if HOST_NAME.fullmatch(host) and ".." not in host:
        return None
    return Finding(
        host,
        "inventory_hostname",
        host,
        "a host name of letters, digits, '.', '-' and '_' (at most 253)",
        "rename the host in the inventory; give its address in ansible_host",
    )


def run(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """Every finding over the whole inventory: host names and placeholders left unfilled
    first, then argument specs, then the invariants, then gixy-ng over the nginx trees
    the inventory renders (webtier.checks.nginxscan)."""
    named = [f for host in hostvars if (f := host_name(host))]
    if named:  # a host's name reaches commands, certificates and files: nothing else first
        return named
    unfilled = [f for host, v in hostvars.items() for f in placeholders(host, v)]
    if unfilled:  # a placeholder is no value: what the model says of it would only repeat
        return unfilled
    findings = [
        f
        for host, v in hostvars.items()
        for f in arguments(host, v, groups) + interfaces(host, v, groups)
    ]
    if findings:  # the model reads the same values: type errors would only repeat
        return findings
    found = capacity.check(hostvars, groups) + invariants.check(hostvars, groups)
    # The load balancers' nginx trees, rendered from what passed, through gixy-ng.
    return found or nginxscan.check(hostvars, groups)


def report(findings: Sequence[Finding]) -> str:
    lines = [f"Preflight found {len(findings)} problem(s); no host was changed:"]
    lines += [f"- {f}" for f in findings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from webtier.model.inventory import load  # noqa: PLC0415

    paths = list(argv if argv is not None else sys.argv[1:]) or ["inventory/sandbox"]
    path = " + ".join(paths)
    inventory = load(*paths)
    findings = run(inventory.all_host_vars(), inventory.members)
    print(report(findings) if findings else f"{path}: preflight passed")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
