"""Preflight: everything wrong with an inventory, found on the controller before any host changes.

Two kinds of check, over every host of the inventory at once:

- each role a host will run is given what its ``meta/argument_specs.yml`` accepts
  (types, choices, required values), and no role-prefixed variable is unknown to the
  role (a typo such as ``gunicorn_worker`` would otherwise be ignored silently); the
  app server speaks the app's interface (WSGI or ASGI);
- the capacity model's cross-layer invariants (:func:`webtier.capacity.check`):
  backlogs against somaxconn, connections against NOFILE, the app tier's queues
  against the load balancers, Redis clients against the app tier, ...

Ansible runs it as the first play of ``site.yml`` (the ``preflight`` role's action
plugin is a thin wrapper); pyinfra and
``python -m webtier.preflight inventory/<env> [profiles/<profile>]`` run the same
function. Each finding names the host, the variable, its value, the limit and the fix.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import yaml

from webtier import ROOT, capacity
from webtier.capacity import Finding, roles_of
from webtier.nginx import role_defaults

# Prefixed variables that are not role arguments: set by the roles or the inventory
# for other purposes.
NOT_ARGUMENTS = {"kernel_tuning_effective", "kernel_tuning_nofile_effective"}


@cache
def role_options(role: str) -> dict[str, Any]:
    """The options of a role's ``main`` entry point in ``meta/argument_specs.yml``."""
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    return yaml.safe_load(path.read_text())["argument_specs"]["main"]["options"]


def arguments(
    host: str, hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """The host's variables against the argument spec of every role it runs."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: PLC0415
    from ansible.module_utils.parsing.convert_bool import boolean  # noqa: PLC0415

    findings = []
    for role in roles_of(host, groups):
        options = role_options(role)
        spec_file = f"roles/{role}/meta/argument_specs.yml"
        prefix = f"{role}_"
        given = {
            k: v for k, v in hostvars.items() if k.startswith(prefix) and k not in NOT_ARGUMENTS
        }
        for name in sorted(set(given) - set(options)):
            close = difflib.get_close_matches(name, options, n=1)
            findings.append(
                Finding(
                    host,
                    name,
                    given[name],
                    f"the {role} role has no such variable ({spec_file})",
                    f"did you mean {close[0]}?" if close else "remove it",
                )
            )
        values = {**role_defaults(role), **given}
        params = {k: values[k] for k in options if k in values}
        result = ArgumentSpecValidator(options).validate(params)
        for error in result.errors:
            names = [n for n in options if n in str(error)]
            name = max(names, key=len) if names else role
            findings.append(
                Finding(
                    host,
                    name,
                    params.get(name, "(unset)"),
                    f"the {role} role's argument spec: {error}",
                    f"see {spec_file}",
                )
            )
        refused = {f.variable for f in findings}
        for name, value in sorted(params.items()):
            # The spec accepts "false" as False, but a template sees a non-empty string.
            bool_as_string = options[name].get("type") == "bool" and isinstance(value, str)
            if bool_as_string and name not in refused:
                meant = str(boolean(value)).lower()
                findings.append(
                    Finding(
                        host,
                        name,
                        value,
                        "a string where the role wants a boolean, and a template takes "
                        "any non-empty string as true",
                        f"write {name}: {meant} in YAML; on the command line "
                        f"-e '{{\"{name}\": {meant}}}' (-e {name}={value} passes a string)",
                    )
                )
    return findings


def interfaces(
    host: str, hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """The app server speaks the app's interface (WSGI or ASGI)."""
    roles = roles_of(host, groups)
    interface = hostvars.get(
        "python_app_interface", role_defaults("python_app")["python_app_interface"]
    )
    if "uwsgi" in roles and interface == "asgi":
        return [
            Finding(
                host,
                "python_app_interface",
                interface,
                "uWSGI serves WSGI apps only",
                "serve this app from app_gunicorn with gunicorn_worker_class: asgi",
            )
        ]
    if "gunicorn" in roles:
        kind = hostvars.get(
            "gunicorn_worker_class", role_defaults("gunicorn")["gunicorn_worker_class"]
        )
        if (kind == "asgi") != (interface == "asgi"):
            return [
                Finding(
                    host,
                    "gunicorn_worker_class",
                    kind,
                    f"the app's interface python_app_interface={interface}",
                    "use asgi for ASGI apps (FastAPI, Starlette) and sync, gthread or "
                    "gevent for WSGI apps",
                )
            ]
    return []


def run(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]]
) -> list[Finding]:
    """Every finding over the whole inventory: argument specs first, then the invariants."""
    findings = [
        f
        for host, v in hostvars.items()
        for f in arguments(host, v, groups) + interfaces(host, v, groups)
    ]
    if findings:  # the model reads the same values: type errors would only repeat
        return findings
    return capacity.check(hostvars, groups)


def report(findings: Sequence[Finding]) -> str:
    lines = [f"Preflight found {len(findings)} problem(s); no host was changed:"]
    lines += [f"- {f}" for f in findings]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from webtier.inventory import load  # noqa: PLC0415

    paths = list(argv if argv is not None else sys.argv[1:]) or ["inventory/sandbox"]
    path = " + ".join(paths)
    inventory = load(*paths)
    findings = run(inventory.all_host_vars(), inventory.members)
    print(report(findings) if findings else f"{path}: preflight passed")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
