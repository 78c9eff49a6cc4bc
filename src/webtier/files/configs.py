"""Every config file of every host, rendered from the inventory without Ansible.

What the two engines share, so they cannot drift:

- ``templates/files.yml``: which files each role writes (template, destination, owner,
  mode), read by the pyinfra deploy, the render command and ``playbooks/render.yml``;
- :func:`variables`: a host's variables layered as Ansible layers them (role defaults,
  then the inventory, then role vars), resolved with plain Jinja2;
- :func:`derived`: what the roles compute from the host and the inventory before they
  template (effective NOFILE, Redis paths, bind addresses and primary, ACL password
  hashes, the load balancer's plan), from one :class:`Facts` about the host.

``Facts`` are read from the host by a deploy; the render command, which touches no
host, assumes them from the inventory (:meth:`Facts.assumed`).

Command line (the render command)::

    python -m webtier.files.configs inventory/<env> --out DIR [--profile OVERLAY]

writes ``DIR/<host>/<path>`` for every file, so two environments or two commits can
be compared with ``diff -r``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from webtier import ROOT, TEMPLATES
from webtier.files import firewall, nginx
from webtier.files.app import app_env
from webtier.files.facts import Facts
from webtier.files.kernel import nofile_effective
from webtier.files.pgbackrest import pgbackrest_derived
from webtier.files.postgresql import monitor_derived, postgresql_derived
from webtier.files.redis import redis_derived
from webtier.files.render import environment
from webtier.model import derive
from webtier.model.inventory import (
    Groups,
    HostVars,
    Inventory,
    Unresolved,
    layered,
    load,
    role_defaults,
)
from webtier.model.topology import roles_of

MANIFEST = TEMPLATES / "files.yml"
#: The variables the nginx plan reads from the load balancer's own variables.
NGINX_PLAN_INPUTS = (
    "nginx_upstreams",
    "nginx_sites",
    "nginx_listen_backlog",
    "nginx_reuseport",
    "nginx_worker_connections",
    "nginx_worker_rlimit_nofile",
    "nginx_limit_req_zones",
    "nginx_limit_conn_zones",
)
#: What Facts.assumed() reads from a host's variables.
FACT_INPUTS = (
    "kernel_tuning_host_kind",
    "ansible_connection",
    "ansible_host",
    "webtier_cpus",
    "webtier_memory_mb",
    "webtier_release",
    "kernel_tuning_nofile",
    "kernel_tuning_nr_open",
)
#: What derived() reads from a host's variables, per role.
DERIVED_INPUTS = {
    "kernel_tuning": ("kernel_tuning_nofile", "kernel_tuning_nr_open"),
    "firewall": ("inventory_hostname",),
    "nginx": NGINX_PLAN_INPUTS,
    "gunicorn": (
        "gunicorn_worker_class",
        "gunicorn_workers",
        "gunicorn_threads",
        "gunicorn_worker_connections",
        "gunicorn_forwarded_allow_ips",
        "gunicorn_graceful_timeout",
    ),
    "uwsgi": ("uwsgi_processes", "uwsgi_harakiri"),
    "celery_worker": ("celery_worker_queues", "celery_worker_time_limit"),
    "python_app": (
        "python_app_env",
        "python_app_secret_env",
        "python_app_redis_group",
        "python_app_redis_user",
        "python_app_name",
        "python_app_database_group",
        "python_app_database",
    ),
    "postgresql": (
        "__postgresql_versions",
        "postgresql_databases",
        "postgresql_shared_buffers",
        "postgresql_effective_cache_size",
        "postgresql_maintenance_work_mem",
        "postgresql_pgbouncer_default_pool_size",
        "postgresql_pgbouncer_reserve_pool_size",
        "postgresql_pgbouncer_max_client_conn",
        "postgresql_pgbouncer_listen",
        "webtier_memory_mb",
        "inventory_hostname",
        "postgresql_replication_group",
        "postgresql_monitor_group",
        "postgresql_replication_password",
        "pgbackrest_repository_group",
        "pgbackrest_archive_timeout",
    ),
    "pgbackrest": (
        "inventory_hostname",
        "postgresql_replication_group",
        "pgbackrest_repository_group",
    ),
    "postgresql_monitor": (
        "__postgresql_monitor_versions",
        "inventory_hostname",
        "postgresql_monitor_databases_group",
        "postgresql_monitor_health_check_period",
        "postgresql_monitor_unhealthy_timeout",
        "postgresql_monitor_demote_timeout",
        "postgresql_monitor_password",
    ),
    "redis": (
        "redis_maxclients",
        "__redis_engines",
        "redis_engine",
        "redis_sentinel",
        "redis_maxmemory",
        "redis_bind",
        "redis_admin_password",
        "redis_app_users",
        "redis_app_commands",
        "redis_replication_password",
        "redis_sentinel_auth_password",
        "redis_replication_group",
        "redis_port",
        "redis_announce_host",
    ),
}


@dataclass(frozen=True)
class File:
    """One rendered config file of a host."""

    role: str
    template: str
    dest: str
    owner: str
    group: str
    mode: str
    content: str
    secret: bool = False


@cache
def manifest() -> dict[str, list[dict[str, Any]]]:
    """``templates/files.yml``: the files of each role."""
    return yaml.safe_load(MANIFEST.read_text())


@cache
def _role_file(role: str, kind: str) -> dict[str, Any]:
    path = ROOT / "roles" / role / kind / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


@cache
def inputs(role: str) -> list[str]:
    """Every variable ``role``'s files read: their templates, the manifest's
    expressions, derived() and the assumed facts (what the Ansible path passes in)."""
    env = environment()
    names = set(FACT_INPUTS) | set(DERIVED_INPUTS.get(role, ()))
    for spec in manifest().get(role, []):
        texts = [(TEMPLATES / spec["template"]).read_text(), spec["dest"]]
        texts += [spec.get(k, "") for k in ("owner", "group")]
        texts += [
            "{{ " + e + " }}"
            for e in [spec.get("when", "True"), *(spec.get("loop") or {}).values()]
        ]
        texts += ["{{ " + e + " }}" for e in (spec.get("vars") or {}).values()]
        for text in texts:
            names |= jinja2.meta.find_undeclared_variables(env.parse(text))
    return sorted(names)


def variables(
    inventory: Inventory, host: str, roles: list[str], facts: Facts | None = None
) -> Mapping[str, Any]:
    """``host``'s variables as its roles see them: every role's defaults, then the
    inventory, then every role's vars (Ansible's precedence for these three), then what
    the roles read from the host (``facts``; none in a render)."""
    below: dict[str, Any] = {}
    above: dict[str, Any] = {"role_path": str(ROOT / "roles" / roles[-1])}
    for role in roles:
        below.update(role_defaults(role))
        above.update(_role_file(role, "vars"))
    return inventory.variables(host, below, {**above, **(facts.variables() if facts else {})})


def derived(
    role: str, v: Mapping[str, Any], facts: Facts, groups: Groups, hostvars: HostVars
) -> dict[str, Any]:
    """What ``role`` computes before it templates, beyond the host's variables.
    ``groups`` and ``hostvars`` are the whole inventory's, as Ansible names them."""
    each = {
        "kernel_tuning": lambda: {
            "kernel_tuning_nofile_effective": nofile_effective(
                v["kernel_tuning_nofile"],
                v["kernel_tuning_nr_open"],
                facts.in_container,
                facts.pid1_nofile_hard,
            )
        },
        "firewall": lambda: {
            "firewall_rules": firewall.plan(
                v["inventory_hostname"], groups, hostvars, facts.resolved
            )
        },
        "gunicorn": lambda: {
            "__gunicorn_cpus": facts.cpus,
            "__gunicorn_nofile": facts.nofile_hard,
            "__gunicorn_sizes": derive.gunicorn_sizes(
                v["gunicorn_worker_class"],
                v["gunicorn_workers"],
                v["gunicorn_threads"],
                v["gunicorn_worker_connections"],
                facts.cpus,
            ),
            "__gunicorn_forwarded_allow_ips": firewall.trusted_proxies(
                v["gunicorn_forwarded_allow_ips"], groups, facts.resolved
            ),
            "__gunicorn_stop_timeout": derive.stop_timeout(
                v["gunicorn_graceful_timeout"], derive.APP_SERVER_STOP_MARGIN
            ),
        },
        "uwsgi": lambda: {
            "__uwsgi_cpus": facts.cpus,
            "__uwsgi_processes": derive.uwsgi_processes(v["uwsgi_processes"], facts.cpus),
            "__uwsgi_nofile": facts.nofile_hard,
            "__uwsgi_features": {"max_requests_delta": facts.uwsgi_max_requests_delta},
            "__uwsgi_stop_timeout": derive.stop_timeout(
                v["uwsgi_harakiri"], derive.APP_SERVER_STOP_MARGIN
            ),
        },
        "celery_worker": lambda: {
            "__celery_worker_queues": derive.celery_queues(v["celery_worker_queues"], facts.cpus),
            "__celery_worker_stop_timeout": derive.stop_timeout(
                v["celery_worker_time_limit"], derive.CELERY_STOP_MARGIN
            ),
        },
        "python_app": lambda: app_env(v, groups, hostvars),
        "nginx": lambda: nginx.plan(
            {k: v[k] for k in NGINX_PLAN_INPUTS}, groups, hostvars, facts.release
        ),
        "redis": lambda: redis_derived(v, facts, groups, hostvars),
        "postgresql": lambda: postgresql_derived(
            v,
            facts.release,
            facts.memtotal_mb,
            facts.ipv4,
            facts.postgresql_verifiers,
            groups,
            hostvars,
            facts.resolved,
        ),
        "pgbackrest": lambda: pgbackrest_derived(
            v["inventory_hostname"], v, facts.release, groups, hostvars
        ),
        "postgresql_monitor": lambda: monitor_derived(
            v["inventory_hostname"], v, facts.release, groups, facts.resolved, facts.ipv4
        ),
    }
    return each[role]() if role in each else {}


def short_names(role: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`derived`'s values named without the role's prefix (``__redis_paths`` ->
    ``paths``, ``nginx_sites_resolved`` -> ``sites_resolved``): how a role's tasks read
    them (``__redis.paths``), while the templates see the full names."""
    prefixes = (f"__{role}_", f"{role}_")
    return {
        next((k[len(p) :] for p in prefixes if k.startswith(p)), k): value
        for k, value in values.items()
    }


class _Context(Mapping):
    """Derived values over the host's variables, read lazily."""

    def __init__(self, v: Mapping[str, Any], extra: Mapping[str, Any]):
        self.v, self.extra = v, extra

    def __getitem__(self, name: str) -> Any:
        return self.extra[name] if name in self.extra else self.v[name]

    def __iter__(self):
        return iter({**dict.fromkeys(self.v), **dict.fromkeys(self.extra)})

    def __len__(self) -> int:
        return len(set(self.v) | set(self.extra))


def _needed(env: jinja2.Environment, source: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The variables ``source`` reads that the context has (the rest stay undefined)."""
    names = jinja2.meta.find_undeclared_variables(env.parse(source))
    return {n: context[n] for n in names if n in context}


def host_files(
    inventory: Inventory,
    host: str,
    facts: Facts | None = None,
    hostvars: HostVars | None = None,
) -> list[File]:
    """Every config file of ``host``, rendered. ``hostvars``: the whole inventory's
    resolved variables, when the caller already has them (one resolution per render)."""
    roles = roles_of(host, inventory.members)
    v = variables(inventory, host, roles, facts)
    facts = facts or Facts.assumed(v)
    hostvars = inventory.all_host_vars() if hostvars is None else hostvars
    return [f for role in roles for f in rendered(role, v, facts, inventory.members, hostvars)]


def rendered(
    role: str, v: Mapping[str, Any], facts: Facts, groups: Groups, hostvars: HostVars
) -> list[File]:
    """``role``'s files for a host whose variables are ``v``, rendered."""
    env = environment()
    files = []
    for spec in role_files(role, v, facts, groups, hostvars):
        template = env.get_template(spec["template"])
        source = (TEMPLATES / spec["template"]).read_text()
        needed = _needed(env, source, _Context(v, spec["vars"]))
        if unresolved := {n: x.error for n, x in needed.items() if isinstance(x, Unresolved)}:
            name, error = next(iter(unresolved.items()))
            raise ValueError(f"{spec['dest']}: {name} does not resolve: {error}")
        content = template.render(needed)
        fields = {k: spec[k] for k in ("template", "dest", "owner", "group", "mode", "secret")}
        files.append(File(role=role, content=content, **fields))
    return files


def resolved_variables(host: str, values: Mapping[str, Any], groups: Groups) -> Mapping[str, Any]:
    """:func:`variables` of a host from what an engine resolved for it (``values``, its
    inventory variables: Ansible's hostvars) instead of an inventory read here."""
    roles = roles_of(host, groups)
    below: dict[str, Any] = {}
    above: dict[str, Any] = {"role_path": str(ROOT / "roles" / roles[-1])} if roles else {}
    for role in roles:
        below.update(role_defaults(role))
        above.update(_role_file(role, "vars"))
    return layered(host, values, groups, below, above)


def role_files(
    role: str, v: Mapping[str, Any], facts: Facts, groups: Groups, hostvars: HostVars
) -> list[dict[str, Any]]:
    """``role``'s files for a host whose variables are ``v``: template, dest, owner,
    group, mode, secret, and ``vars``, the variables to render it with on top of ``v``
    (derived values, the loop element, the file's own vars)."""
    return _places(role, v, derived(role, v, facts, groups, hostvars))


def _places(role: str, v: Mapping[str, Any], extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    env = environment()
    context = _Context(v, extra)

    def expression(text: str, scope: Mapping[str, Any]) -> Any:
        return env.compile_expression(text)(**_needed(env, "{{ " + text + " }}", scope))

    def string(text: str, scope: Mapping[str, Any]) -> str:
        return env.from_string(text).render(_needed(env, text, scope))

    out = []
    for spec in manifest().get(role, []):
        if "when" in spec and not expression(spec["when"], context):
            continue
        ((name, over),) = (spec.get("loop") or {"_": "[None]"}).items()
        for element in expression(over, context):
            own = {**context.extra, name: element}
            own |= {k: expression(e, _Context(v, own)) for k, e in (spec.get("vars") or {}).items()}
            scope = _Context(v, own)
            out.append(
                {
                    "template": spec["template"],
                    "dest": string(spec["dest"], scope),
                    "owner": string(spec.get("owner", "root"), scope),
                    "group": string(spec.get("group", "root"), scope),
                    "mode": spec.get("mode", "0644"),
                    "secret": bool(spec.get("secret", False)),
                    "vars": {k: x for k, x in own.items() if k != "_"},
                }
            )
    return out


def render(inventory: Inventory, out: Path) -> list[tuple[str, File]]:
    """Write every file of every host to ``out/<host>/<dest>``; touches no host. Nothing
    is written outside ``out`` (a host name or a path that climbs out is refused), and a
    secret file (templates/files.yml) is readable by its owner only."""
    hostvars = inventory.all_host_vars()
    root = out.resolve()
    planned = []  # every path is checked before the first file is written
    for host in inventory.hosts:
        for file in host_files(inventory, host, hostvars=hostvars):
            path = (root / host / file.dest.lstrip("/")).resolve()
            if host in ("", ".", "..") or not path.is_relative_to(root / host):
                raise ValueError(f"{host}: {file.dest} would be written outside {out}/{host}")
            planned.append((host, file, path))
    for _host, file, path in planned:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o600 if file.secret else 0o644
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(descriptor, mode)  # an older copy keeps its mode otherwise
        with os.fdopen(descriptor, "w") as handle:
            handle.write(file.content)
    return [(host, file) for host, file, _ in planned]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webtier.files.configs",
        description="Render every config file of every host of an environment into a "
        "directory (OUT/<host>/<path>), touching no host.",
    )
    parser.add_argument("inventory", help="inventory/<env>")
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument("--profile", action="append", default=[], help="overlay inventory")
    args = parser.parse_args(argv)
    try:
        written = render(load(args.inventory, *args.profile), args.out)
    except (ValueError, KeyError, jinja2.TemplateError) as error:
        print(f"render: {error}", file=sys.stderr)
        return 1
    hosts = {host for host, _ in written}
    print(f"{len(written)} files of {len(hosts)} hosts written under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
