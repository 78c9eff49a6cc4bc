"""What every role module of the pyinfra engine shares: the host being deployed
(``this``: its inventory name, the inventory, its roles and variables, set by
deploy.py for each host) and how a file is written (a candidate checked first, then
the live file), a package installed, a fact read."""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from io import StringIO
from typing import Any

from pyinfra import host, state
from pyinfra.api import operation
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import Sha1File
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

from webtier import ROOT
from webtier.checks import live
from webtier.files import configs
from webtier.files.facts import Facts
from webtier.model import capacity
from webtier.model.inventory import Inventory

#: The checkers and helpers the roles install (the same files).
HELPERS = {
    "python_app": "files/webtier-unit-run",
    "nginx": "files/webtier-unit-run",
    "redis": "roles/redis/files/webtier-redis-check",
    "uwsgi": "roles/uwsgi/files/webtier-uwsgi-check",
    "pgbackrest": "roles/pgbackrest/files/webtier-pgbackrest-check",
}
CANDIDATES = "/var/lib/webtier/pyinfra-candidates"
#: The redis role's reading of a config file (module_utils: what the role's modules run
#: on the host), run on the host the same way: directives, not text, are compared.
REDIS_UTILS = ROOT / "plugins/module_utils/webtier_redis.py"
#: A check run the way a unit runs (its user, environment files, sandbox).
CHECK_IN_UNIT = "/usr/local/sbin/webtier-unit-run --unit"


@dataclass
class Host:
    """A host being deployed: what a role of site.yml sees as its variables."""

    name: str
    inventory: Inventory
    roles: list[str]
    v: dict[str, Any] = field(default_factory=dict)


#: Each host pyinfra loads, by its pyinfra name.
_HOSTS: dict[str, Host] = {}


class _Current:
    """The host pyinfra is loading in this greenlet. pyinfra loads its hosts in
    parallel, each in a greenlet with its own ``pyinfra.host``: a plain module-level
    value would be another host's by the time a fact read yields."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_HOSTS[host.name], name)

    def begin(self, deployed: Host) -> None:
        """Make ``deployed`` the current greenlet's host (deploy.py, once per host)."""
        _HOSTS[host.name] = deployed


#: The host being deployed (``this.name``, ``this.inventory``, ``this.roles``, ``this.v``).
this = _Current()


def fact(command: str) -> str:
    return (host.get_fact(Command, command=command) or "").strip()


def python(script: str, rest: str = "") -> str:
    """A command that runs a Python ``script`` with the host's python3, the redis role's
    module_utils defined first (the passwords it reads stay on the host: no argv, no
    env); ``rest`` ends the command's line (the here-document follows it)."""
    utils = REDIS_UTILS.read_text()
    return f"python3 - <<'WEBTIER_EOF'{rest}\n{utils}\n{script}\nWEBTIER_EOF"


def python_fact(script: str) -> str:
    """The output of :func:`_python` (empty when it fails: the server is not there yet)."""
    return fact(python(script, " 2>/dev/null || true"))


@cache
def redis_utils():
    spec = importlib.util.spec_from_file_location("webtier_redis_utils", REDIS_UTILS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def same_directives(file: configs.File) -> bool:
    """Whether the live ``file`` (a Redis config) says what ``file`` says."""
    live = python_fact(
        f"with open({file.dest!r}) as stream:\n    print(directives_digest(stream.read()))"
    )
    return live == redis_utils().directives_digest(file.content)


def host_facts(facts: Facts) -> live.HostFacts:
    """What the roles' checks read (kernel_tuning_effective under Ansible). somaxconn and
    tcp_max_syn_backlog are the ones kernel_tuning sets in this run (per network
    namespace: a container gets them too) before any server starts; the NOFILE limit is
    the one it will grant (``nofile_effective``)."""
    return live.HostFacts(
        capacity.Kernel(
            int(this.v["kernel_tuning_somaxconn"]),
            int(this.v["kernel_tuning_tcp_max_syn_backlog"]),
            facts.nofile_hard,
            facts.cpus,
        ),
        fact(". /etc/os-release; echo $VERSION_CODENAME"),
        int(fact("cat /proc/sys/vm/overcommit_memory")),
        facts.in_container,
    )


def packages(name: str, names: list[str]) -> None:
    """Install Debian packages. The package lists are refreshed first only when a package
    is missing and the lists are older than an hour (the roles' cache_valid_time:
    3600, read from the lists themselves): a host that has every package changes
    nothing, however old its lists."""
    if not host.data.get("_webtier_apt_fresh"):
        installed = host.get_fact(DebPackages)
        if any(package not in installed for package in names):
            fresh = fact(
                "find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 | head -n1"
            )
            if not fresh:
                apt.update(name="Refresh the package lists (older than an hour)")
            host.data._webtier_apt_fresh = True
    apt.packages(name=name, packages=names)


#: How many secret uploads are under way (the hosts run in parallel) and the run's own
#: --diff setting, put back when the last one ends.
_SECRET_UPLOADS = {"running": 0, "diff": False}


@operation()
def put_secret(**arguments):
    """files.put without a diff, whenever pyinfra runs it (it makes the diff as it
    prepares the operation and again as it executes it): a password, key or verifier is
    never shown by ``--diff``, as Ansible's role_files action strips a secret file's.
    pyinfra's diff switch is global and the hosts' operations run side by side
    (greenlets switching at every command): the switch stays off while any host's secret
    upload is under way, and only the last one to end puts the run's setting back (a
    plain save-and-restore let one host's upload turn the diff back on in the middle of
    another's, which then printed a secret env file: seen once in two runs)."""
    if _SECRET_UPLOADS["running"] == 0:
        _SECRET_UPLOADS["diff"] = state.config.DIFF
    _SECRET_UPLOADS["running"] += 1
    state.config.DIFF = False
    try:
        yield from files.put._inner(**arguments)
    finally:
        _SECRET_UPLOADS["running"] -= 1
        if _SECRET_UPLOADS["running"] == 0:
            state.config.DIFF = _SECRET_UPLOADS["diff"]


def private_staging() -> dict[str, str]:
    """Where pyinfra stages a file it uploads before sudo copies it into place: a
    directory of the connecting user only (``mktemp -d``: mode 0700, a random name),
    made once per run and host, instead of a predictable name in /tmp another local
    user could read. Without sudo the file is written in place: nothing to stage."""
    if not host.data.get("_sudo"):
        return {}
    staging = host.get_fact(Command, command="mktemp -d /tmp/webtier-stage.XXXXXXXXXX", _sudo=False)
    return {"_temp_dir": (staging or "").strip()}


def hand_over(name: str, content: str, filename: str, when: Callable[[], bool]) -> str:
    """A secret for one command that reads it and removes it (``when`` it runs): a file
    only root reads, beside the candidates (not /run: a container's /run is a tmpfs,
    which the container engine cannot copy a file into), staged privately and without
    a diff; never in an argv, an environment or an output. Its path."""
    path = f"{CANDIDATES}/{filename}"
    put_secret(
        name=name,
        src=StringIO(content),
        dest=path,
        create_remote_dir=True,
        user="root",
        group="root",
        mode="0600",
        _if=when,
        **private_staging(),
    )
    return path


def upload(file: configs.File, dest: str, name: str):
    """``file``'s content to ``dest`` with its owner and mode: staged privately, and
    without a diff when it is a secret."""
    write = put_secret if file.secret else files.put
    return write(
        name=name,
        src=StringIO(file.content),
        dest=dest,
        create_remote_dir=True,
        user=file.owner,
        group=file.group,
        mode=file.mode,
        **private_staging(),
    )


def candidate(file: configs.File, path: str | None = None) -> str:
    """Write a candidate copy of ``file`` (what a check reads), at ``path`` or under
    CANDIDATES; its path."""
    path = path or f"{CANDIDATES}{file.dest}"
    upload(file, path, f"Candidate {file.dest}")
    return path


def put(file: configs.File, check: str | Callable[[], str] | None = None):
    """Write ``file``; with ``check`` (a command, ``%s`` for the path, or a function
    that returns one) only after the check passed on a candidate copy. Nothing is
    staged while the live file is already the wanted one: a no-op run writes nothing.
    Returns the operation (``did_change``)."""
    if check:
        live = host.get_fact(Sha1File, path=file.dest)
        if live != hashlib.sha1(file.content.encode()).hexdigest():
            path = candidate(file)
            command = check() if callable(check) else check
            server.shell(name=f"Check {file.dest}", commands=[command.replace("%s", path)])
            if file.secret:  # no copy of a secret stays behind its check
                files.file(name=f"Remove the candidate of {file.dest}", path=path, present=False)
    return upload(file, file.dest, f"Write {file.dest}")


def helper(role: str) -> None:
    name = HELPERS[role].rsplit("/", 1)[1]
    files.put(
        name=f"Install {name}",
        src=str(ROOT / HELPERS[role]),
        dest=f"/usr/local/sbin/{name}",
        mode="0755",
    )


def app_run(app: dict, unit: configs.File, command: str) -> Callable[[], str]:
    """A check of the candidate (``{}`` in command) as the app's unit runs: its user,
    environment files and sandbox, from a candidate of ``unit`` written when the check
    is needed (once per run and host)."""

    def check() -> str:
        staged = host.data.get("_webtier_staged_units") or {}
        if unit.dest not in staged:
            staged[unit.dest] = candidate(unit)
            host.data._webtier_staged_units = staged
        unit_path = staged[unit.dest]
        return f"{CHECK_IN_UNIT} {unit_path} --chdir {app['path']} --candidate %s -- {command}"

    return check


def serve(unit: str, restart, reload, unit_changed) -> None:
    systemd.daemon_reload(name="Reload systemd units", _if=unit_changed)
    started = systemd.service(
        name=f"Keep {unit} enabled and running", service=unit, running=True, enabled=True
    )
    server.shell(
        name=f"Restart {unit}",
        commands=[f"systemctl restart {unit}"],
        _if=lambda: not started.did_change() and restart(),
    )
    server.shell(
        name=f"Reload {unit}",
        commands=[f"systemctl reload {unit}"],
        _if=lambda: not started.did_change() and not restart() and reload(),
    )
