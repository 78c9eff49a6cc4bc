"""Load an Ansible YAML inventory directory without Ansible (pyinfra 3 has no connector).

``load("inventory/sandbox")`` reads ``hosts.yml`` plus ``group_vars/`` and
``host_vars/`` (a ``NAME.yml`` file or a ``NAME/`` folder of ``*.yml`` files) and merges
every host's variables with Ansible's precedence, lowest first:

1. ``all``: its vars from the inventory file, then its ``group_vars`` file(s);
2. the host's other groups, by depth (``all``'s children, then theirs, ...), same depth
   by name: first each group's vars from the inventory file, then the ``group_vars``
   file(s) of each source in turn (an overlay's, read last, win over every group of the
   sources before it, as Ansible's vars plugins read one source after the other);
3. the host's vars from the inventory file, then its ``host_vars`` file(s).

Values may hold Jinja2 expressions (``"{{ prefix }}-{{ inventory_hostname }}"``):
:meth:`Inventory.host_vars` resolves them with plain Jinja2 against the host's own
variables and the magic variables ``inventory_hostname``, ``inventory_dir``,
``group_names`` and ``groups``. Vault-encrypted files carry secrets, not sizing: they
are read only when ``WEBTIER_VAULT_PASSWORD_FILE`` names their password (the pyinfra
engine deploying, :mod:`webtier.model.vault`); otherwise a ``vault_*`` variable resolves to
the placeholder ``<vault:NAME>`` (:data:`SEALED`), which no deploy may write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from webtier import ROOT
from webtier.model import vault

#: The inventory's groups (name -> hosts) and every host's variables, as Ansible names them.
Groups = Mapping[str, list[str]]
HostVars = Mapping[str, Mapping[str, Any]]

YAML_SUFFIXES = (".yml", ".yaml")
VAULT_HEADER = "$ANSIBLE_VAULT"
#: What a secret from an unread vault resolves to (render and preflight need no secret).
SEALED = "<vault:{}>"


@dataclass(frozen=True)
class Unresolved:
    """A variable's value that could not be resolved (its templating error): the model
    judges it as a value it cannot check (a finding naming the variable), never as an
    absent one."""

    error: str


class InventoryError(ValueError):
    """The inventory cannot be read; the message names the file and the problem."""


@dataclass
class Group:
    name: str
    depth: int = 0
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class Inventory:
    path: Path
    groups: dict[str, Group]
    raw_host_vars: dict[str, dict[str, Any]]
    #: Vault files read without their password (none given): their variables are
    #: absent. A deploy stops on them; a render or preflight shows what they hide.
    sealed_files: list[Path] = field(default_factory=list)

    @property
    def hosts(self) -> list[str]:
        return list(self.raw_host_vars)

    @cached_property
    def members(self) -> dict[str, list[str]]:
        """Every group's hosts, its descendants' included, in inventory order."""
        members = {}
        for name in self.groups:
            seen: dict[str, None] = {}
            stack = [name]
            while stack:
                current = self.groups[stack.pop(0)]
                seen.update(dict.fromkeys(current.hosts))
                stack.extend(current.children)
            members[name] = list(seen)
        return members

    def group_hosts(self, group: str) -> list[str]:
        """Hosts of ``group`` and of its descendants, in inventory order."""
        return self.members[group]

    def group_names(self, host: str) -> list[str]:
        """Groups ``host`` belongs to, directly or through a child group (not ``all``)."""
        return sorted(g for g, hosts in self.members.items() if g != "all" and host in hosts)

    def host_vars(self, host: str) -> dict[str, Any]:
        """The host's variables with every Jinja2 expression resolved."""
        raw = self.raw_host_vars[host]
        return _Resolver({**raw, **self.magic_vars(host)}).resolve_all(raw)

    def variables(
        self,
        host: str,
        below: Mapping[str, Any] | None = None,
        above: Mapping[str, Any] | None = None,
    ) -> Variables:
        """The host's variables between ``below`` (role defaults) and ``above`` (role
        vars), as Ansible layers them; each is resolved when first read, so a variable
        nobody reads may use Ansible-only filters."""
        raw = {**(below or {}), **self.raw_host_vars[host], **(above or {})}
        return _Resolver({**raw, **self.magic_vars(host)})

    def magic_vars(self, host: str) -> dict[str, Any]:
        """What Ansible adds to every host's variables."""
        return magic_vars(host, self.members) | {"inventory_dir": str(self.path)}

    def all_host_vars(self) -> dict[str, dict[str, Any]]:
        """:meth:`host_vars` of every host, by name (what Ansible's ``hostvars`` holds)."""
        return {host: self.host_vars(host) for host in self.hosts}


Variables = Mapping[str, Any]


def magic_vars(host: str, groups: Groups) -> dict[str, Any]:
    """What Ansible adds to every host's variables (without ``inventory_dir``)."""
    return {
        "inventory_hostname": host,
        "inventory_hostname_short": host.split(".", maxsplit=1)[0],
        "group_names": sorted(g for g, hosts in groups.items() if host in hosts and g != "all"),
        "groups": {g: list(hosts) for g, hosts in groups.items()},
    }


def layered(
    host: str,
    values: Mapping[str, Any],
    groups: Groups,
    below: Mapping[str, Any] | None = None,
    above: Mapping[str, Any] | None = None,
) -> Variables:
    """A host's variables as an engine resolved them (``values``), between ``below``
    (role defaults) and ``above`` (role vars), as :meth:`Inventory.variables` layers an
    inventory's own."""
    raw = {**(below or {}), **values, **(above or {})}
    return _Resolver({**raw, **magic_vars(host, groups)})


def load(path: str | Path, *overlays: str | Path) -> Inventory:
    """The inventory at ``path``; each overlay (a profile such as
    ``profiles/distro-defaults``) is read after it, as Ansible reads a later ``-i``
    source: its groups join the inventory's and its group_vars win for the same group."""
    root = Path(path)
    groups: dict[str, Group] = {}
    host_inline: dict[str, dict[str, Any]] = {}
    sources = [root, *map(Path, overlays)]
    for source in sources:
        _read_source(source, groups, host_inline)
    inventory = Inventory(path=root, groups=groups, raw_host_vars={})
    files = {
        (source, group): _vars_from(source / "group_vars", group, inventory.sealed_files)
        for source in sources
        for group in groups
    }
    for host, inline in host_inline.items():
        merged: dict[str, Any] = {**groups["all"].vars}
        for source in sources:
            merged.update(files[source, "all"])
        mine = [
            g
            for g in sorted(groups.values(), key=lambda g: (g.depth, g.name))
            if g.name != "all" and host in inventory.members[g.name]
        ]
        for group in mine:
            merged.update(group.vars)
        for source in sources:
            for group in mine:
                merged.update(files[source, group.name])
        merged.update(inline)
        for source in sources:
            merged.update(_vars_from(source / "host_vars", host, inventory.sealed_files))
        inventory.raw_host_vars[host] = merged
    return inventory


def _read_source(
    root: Path, groups: dict[str, Group], host_inline: dict[str, dict[str, Any]]
) -> None:
    source = next(
        (root / f"hosts{s}" for s in YAML_SUFFIXES if (root / f"hosts{s}").exists()), None
    )
    if source is None:
        raise InventoryError(f"{root}: no hosts.yml")
    data = _read_yaml(source) or {}
    if not isinstance(data, Mapping) or set(data) - {"all"}:
        raise InventoryError(f"{source}: the top level must be the single group 'all'")

    def walk(name: str, node: Any, depth: int) -> None:
        if not isinstance(node, Mapping):
            raise InventoryError(f"{source}: group '{name}' must be a mapping")
        unknown = set(node) - {"hosts", "vars", "children"}
        if unknown:
            raise InventoryError(f"{source}: group '{name}' has unknown keys {sorted(unknown)}")
        group = groups.setdefault(name, Group(name))
        group.depth = max(group.depth, depth)
        group.vars.update(node.get("vars") or {})
        for host, inline in (node.get("hosts") or {}).items():
            if host not in group.hosts:
                group.hosts.append(host)
            host_inline.setdefault(host, {}).update(inline or {})
        for child, child_node in (node.get("children") or {}).items():
            if child not in group.children:
                group.children.append(child)
            walk(child, child_node or {}, depth + 1)

    walk("all", data.get("all") or {}, 0)


def _vars_from(folder: Path, name: str, sealed: list[Path]) -> dict[str, Any]:
    """Variables of ``folder/name.yml`` or of every ``folder/name/*.yml``, sorted by name;
    a vault file without a password to open it is added to ``sealed``."""
    files = [folder / f"{name}{s}" for s in YAML_SUFFIXES if (folder / f"{name}{s}").is_file()]
    if (folder / name).is_dir():
        files += sorted(p for p in (folder / name).rglob("*") if p.suffix in YAML_SUFFIXES)
    merged: dict[str, Any] = {}
    for path in files:
        text = path.read_text()
        if text.startswith(VAULT_HEADER):
            if (secret := vault.password_file()) is None:
                if path not in sealed:
                    sealed.append(path)
                continue
            try:
                text = vault.decrypt(path, secret)
            except ValueError as error:
                raise InventoryError(f"{path}: {error}") from None
        data = _read_yaml(path, text) or {}
        if not isinstance(data, Mapping):
            raise InventoryError(f"{path}: variables must be a mapping")
        merged.update(data)
    return merged


def _read_yaml(path: Path, text: str | None = None) -> Any:
    try:
        return yaml.safe_load(path.read_text() if text is None else text)
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: {exc}") from exc


class _Resolver(Mapping):
    """Resolve Jinja2 expressions in variables, dependencies first, refusing cycles.
    As a mapping it resolves each variable when it is first read."""

    def __init__(self, context: Mapping[str, Any]):
        self.context = dict(context)
        self.done: dict[str, Any] = {}
        self.active: set[str] = set()
        self.env = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def resolve_all(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        resolved = {k: self.var(k) for k in raw}
        return {**{k: v for k, v in self.context.items() if k not in raw}, **resolved}

    def __getitem__(self, name: str) -> Any:
        if name not in self.context:
            raise KeyError(name)
        return self.var(name)

    def __iter__(self):
        return iter(self.context)

    def __len__(self) -> int:
        return len(self.context)

    def var(self, name: str) -> Any:
        if name not in self.done:
            if name in self.active:
                raise InventoryError(f"variable '{name}' refers to itself")
            self.active.add(name)
            try:
                self.done[name] = self.value(self.context[name])
            except jinja2.TemplateError as error:
                self.done[name] = Unresolved(str(error))
            finally:
                self.active.discard(name)
        return self.done[name]

    def value(self, value: Any) -> Any:
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            ast = self.env.parse(value)
            names = jinja2.meta.find_undeclared_variables(ast)
            known = {n: self.var(n) for n in names if n in self.context}
            # Secrets live in vault files, which are not read: a reference to one stays
            # visible as a placeholder instead of failing the whole host.
            known |= {n: SEALED.format(n) for n in names - set(known) if n.startswith("vault_")}
            return self.env.from_string(ast).render(known)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value


def holds(value: Any, text: str) -> bool:
    """Whether ``text`` is in any string of ``value``, however deeply nested."""
    if isinstance(value, Mapping):
        return any(holds(v, text) for v in value.values())
    if isinstance(value, list | tuple):
        return any(holds(v, text) for v in value)
    return isinstance(value, str) and text in value


def sealed(hostvars: Mapping[str, Any]) -> list[str]:
    """The variables that hold a secret from a vault that was not opened."""
    marker = SEALED.split("{", maxsplit=1)[0]
    return sorted(name for name, value in hostvars.items() if holds(value, marker))


def plain(value: Any) -> Any:
    """``value`` with every mapping a dict and every list or tuple a list, all the way
    down (an engine's own containers, such as Ansible's lazy ones, as plain Python)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


@cache
def role_defaults(role: str) -> dict[str, Any]:
    """A role's ``defaults/main.yml``: what a host has unless its inventory says."""
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def with_defaults(roles: Iterable[str], hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """The variables ``roles`` run with on a host whose own are ``hostvars``: each role's
    defaults under them, as Ansible ranks the two. The package's rules read a host's
    variables through this one resolver (``webtier.files.configs.variables`` adds role vars
    and facts for rendering)."""
    merged: dict[str, Any] = {}
    for role in roles:
        merged.update(role_defaults(role))
    return {**merged, **hostvars}
