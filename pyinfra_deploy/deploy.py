"""The whole stack converged by pyinfra, from the same inventory and the same templates
as site.yml (see README.md, "pyinfra"):

    WEBTIER_INVENTORY=inventory/sandbox \
        pyinfra -y pyinfra_deploy/inventory.py pyinfra_deploy/deploy.py

Each host runs the roles site.yml gives it (webtier.capacity.roles_of), in site.yml's
order. Which files each role writes and with what content comes from
webtier.configs.host_files(), the same function the render command uses and the parity
test holds against Ansible's template module, with this host's facts read here. Every
file that has a checker is written to a candidate path, checked, and only then put
live: a failed check stops the host with the live file and the running service as
they were. Services are reloaded or restarted only when a file they read changed, so
a second run changes nothing.

Redis Sentinel as the role does it: the local Sentinel's primary wins over the
inventory's, the seed is written once (Sentinel owns the file afterwards), and
redis.conf is rewritten only when its directives differ (Sentinel reformats it at a
failover).

Queue workers (celery_worker) as the role runs them: the launcher checked by importing
it as the units run, one unit per queue, a restart (a warm shutdown) for new code.

The database tier (postgresql) as the role does it: the candidates checked, a reload and
a restart only for what PostgreSQL reports pending, users (their SCRAM verifiers) and
databases changed only when they differ, PgBouncer restarted only for new listeners.

Not done here (Ansible only): Redis settings applied at run time with CONFIG SET
(pyinfra restarts Redis instead), Sentinel over TLS, check mode, releases
(playbooks/deploy.yml, which never leaves a location without a serving server, and its
python_app_switch_only rollback). Like the role, an empty python_app_release keeps the
release the host runs; a python_app_release other than the one a host runs is refused,
naming deploy.yml (pyinfra would restart every host's servers at once).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shlex
from collections.abc import Callable
from functools import cache
from io import StringIO

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.deb import DebPackages
from pyinfra.facts.files import Sha1File
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, systemd

from webtier import ROOT, capacity, configs, derive, live, vault
from webtier import firewall as firewall_plan
from webtier.capacity import roles_of
from webtier.inventory import load, sealed

NAME = host.data.webtier_host
INVENTORY = load(ROOT / host.data.webtier_inventory)
ROLES = roles_of(NAME, INVENTORY.members)
V = configs.variables(INVENTORY, NAME, ROLES)
if locked := sealed(V):  # a secret from a vault nobody opened: its placeholder
    raise DeployError(
        f"{NAME}: {', '.join(locked)} come from a vault; give its password file: "
        f"webtier-pyinfra INVENTORY --vault-password-file FILE (or {vault.PASSWORD_FILE}=FILE)"
    )
#: The checkers and helpers the roles install (the same files).
HELPERS = {
    "python_app": "files/webtier-unit-run",
    "nginx": "files/webtier-unit-run",
    "redis": "roles/redis/files/webtier-redis-check",
    "uwsgi": "roles/uwsgi/files/webtier-uwsgi-check",
}
CANDIDATES = "/var/lib/webtier/pyinfra-candidates"
#: The redis role's reading of a config file (module_utils: what the role's modules run
#: on the host), run on the host the same way: directives, not text, are compared.
REDIS_UTILS = ROOT / "plugins/module_utils/webtier_redis.py"
#: A check run the way a unit runs (its user, environment files, sandbox).
CHECK_IN_UNIT = "/usr/local/sbin/webtier-unit-run --unit"


def _fact(command: str) -> str:
    return (host.get_fact(Command, command=command) or "").strip()


def _python(script: str, rest: str = "") -> str:
    """A command that runs a Python ``script`` with the host's python3, the redis role's
    module_utils defined first (the passwords it reads stay on the host: no argv, no
    env); ``rest`` ends the command's line (the here-document follows it)."""
    utils = REDIS_UTILS.read_text()
    return f"python3 - <<'WEBTIER_EOF'{rest}\n{utils}\n{script}\nWEBTIER_EOF"


def _python_fact(script: str) -> str:
    """The output of :func:`_python` (empty when it fails: the server is not there yet)."""
    return _fact(_python(script, " 2>/dev/null || true"))


@cache
def _redis_utils():
    spec = importlib.util.spec_from_file_location("webtier_redis_utils", REDIS_UTILS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sentinel_client() -> str:
    """Python that connects ``client`` to the local Sentinel (its password read from its
    own file) and names the watched set ``name``."""
    paths = V["__redis_engines"][V["redis_engine"]]
    return f"""
with open({paths["sentinel_conf"]!r}) as stream:
    password = parse(stream.read()).get("requirepass", [[None]])[0][0]
client = redis.Redis(host="127.0.0.1", port={int(V["redis_sentinel_port"])},
                     password=password, socket_timeout=2, decode_responses=True)
name = {V["redis_sentinel_master_name"]!r}
"""


def sentinel_says() -> tuple[str, ...]:
    """('host', 'port') of the primary the local Sentinel names, () if it does not run."""
    if "redis" not in ROLES or not V["redis_sentinel"]:
        return ()
    answer = _python_fact(
        _sentinel_client()
        + 'print(*client.execute_command("SENTINEL", "get-master-addr-by-name", name))'
    ).split()
    return tuple(answer) if len(answer) == 2 else ()


def same_directives(file: configs.File) -> bool:
    """Whether the live ``file`` (a Redis config) says what ``file`` says."""
    live = _python_fact(
        f"with open({file.dest!r}) as stream:\n    print(directives_digest(stream.read()))"
    )
    return live == _redis_utils().directives_digest(file.content)


def read_facts() -> configs.Facts:
    """What the roles read from the host before they template, read the same way."""
    kernel = configs.kernel_host(
        V["kernel_tuning_host_kind"],
        _fact(configs.HOST_KIND_PROBE),
        V["kernel_tuning_nofile"],
        V["kernel_tuning_nr_open"],
    )
    # As the uwsgi role asks `uwsgi --help`; before uWSGI is installed: Debian's builds
    # (2.0.21 in 12, 2.0.28 in 13) have no --max-requests-delta.
    uwsgi_help = _fact("uwsgi --help 2>/dev/null | grep -c -- --max-requests-delta || true")
    route = _fact("ip -4 -o route get 192.0.2.1 2>/dev/null || true")
    source = re.search(r"\bsrc (\S+)", route)
    running = (
        _fact(f"readlink {V['python_app_root']}/current || true") if "python_app" in ROLES else ""
    )
    # As the firewall role resolves them: on the host, at converge time.
    # The load balancers too on a Gunicorn host (forwarded_allow_ips auto).
    names = []
    if "firewall" in ROLES:
        names += firewall_plan.sources(NAME, INVENTORY.members, INVENTORY.all_host_vars())
    if "gunicorn" in ROLES:
        names += INVENTORY.members.get(firewall_plan.LOAD_BALANCERS, [])
    resolved = {
        name: firewall_plan.addresses(name, _fact(f"getent ahostsv4 {name} || true"))
        for name in dict.fromkeys(names)
    } or None
    return configs.Facts(
        resolved=resolved,
        cpus=int(_fact("nproc")),
        pid1_nofile_hard=kernel["pid1_nofile_hard"],
        nofile_hard=kernel["nofile_effective"],
        in_container=kernel["in_container"],
        # its RAM, or its cgroup's memory limit when lower (as kernel_tuning publishes it)
        memtotal_mb=derive.granted_memory_mb(*_fact(configs.MEMORY_PROBE).split()[:2]),
        ipv4=source[1] if source else None,
        uwsgi_max_requests_delta=uwsgi_help not in ("", "0"),
        running_release=running.rsplit("/", 1)[-1] or None,
        release=_fact(". /etc/os-release; echo $VERSION_CODENAME"),
        redis_sentinel_says=sentinel_says(),
    )


def host_facts(facts: configs.Facts) -> live.HostFacts:
    """What the roles' checks read (kernel_tuning_effective under Ansible). somaxconn and
    tcp_max_syn_backlog are the ones kernel_tuning sets in this run (per network
    namespace: a container gets them too) before any server starts; the NOFILE limit is
    the one it will grant (``configs.nofile_effective``)."""
    return live.HostFacts(
        capacity.Kernel(
            int(V["kernel_tuning_somaxconn"]),
            int(V["kernel_tuning_tcp_max_syn_backlog"]),
            facts.nofile_hard,
            facts.cpus,
        ),
        _fact(". /etc/os-release; echo $VERSION_CODENAME"),
        int(_fact("cat /proc/sys/vm/overcommit_memory")),
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
            fresh = _fact(
                "find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 | head -n1"
            )
            if not fresh:
                apt.update(name="Refresh the package lists (older than an hour)")
            host.data._webtier_apt_fresh = True
    apt.packages(name=name, packages=names)


def candidate(file: configs.File, path: str | None = None) -> str:
    """Write a candidate copy of ``file`` (what a check reads), at ``path`` or under
    CANDIDATES; its path."""
    path = path or f"{CANDIDATES}{file.dest}"
    files.put(
        name=f"Candidate {file.dest}",
        src=StringIO(file.content),
        dest=path,
        create_remote_dir=True,
        user=file.owner,
        group=file.group,
        mode=file.mode,
    )
    return path


def put(file: configs.File, check: str | Callable[[], str] | None = None):
    """Write ``file``; with ``check`` (a command, ``%s`` for the path, or a function
    that returns one) only after the check passed on a candidate copy. Nothing is
    staged while the live file is already the wanted one: a no-op run writes nothing.
    Returns the operation (``did_change``)."""
    content = file.content
    args = {"user": file.owner, "group": file.group, "mode": file.mode}
    if check:
        live = host.get_fact(Sha1File, path=file.dest)
        if live != hashlib.sha1(content.encode()).hexdigest():
            path = candidate(file)
            command = check() if callable(check) else check
            server.shell(name=f"Check {file.dest}", commands=[command.replace("%s", path)])
    return files.put(
        name=f"Write {file.dest}",
        src=StringIO(content),
        dest=file.dest,
        create_remote_dir=True,
        **args,
    )


def helper(role: str) -> None:
    name = HELPERS[role].rsplit("/", 1)[1]
    files.put(
        name=f"Install {name}",
        src=str(ROOT / HELPERS[role]),
        dest=f"/usr/local/sbin/{name}",
        mode="0755",
    )


def kernel_tuning(mine: list[configs.File], facts: configs.Facts) -> None:
    sysctl, limits, pam = mine
    put(sysctl)
    netns = set(V["__kernel_tuning_netns_keys"])
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


def firewall(mine: list[configs.File]) -> None:
    if not V["firewall_enabled"]:
        raise DeployError(f"{NAME}: firewall_enabled: false is converged by site.yml only")
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
    loaded = _fact("nft list table inet webtier >/dev/null 2>&1 && echo yes || echo no")
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


def redis(mine: list[configs.File], facts: configs.Facts) -> None:
    if V["redis_sentinel"] and V["redis_tls"]:
        raise DeployError(
            f"{NAME}: Sentinel over TLS is converged by site.yml only "
            "(see pyinfra_deploy/deploy.py)"
        )
    paths = V["__redis_engines"][V["redis_engine"]]
    dropins = [f for f in mine if f.template.endswith("redis.service.d/webtier.conf.j2")]
    acl, conf = (next(f for f in mine if f.dest == paths[k]) for k in ("aclfile", "conf"))
    # The drop-in first: the package's postinst starts the service with it.
    dropin_ops = [put(f) for f in dropins]
    systemd.daemon_reload(
        name="Reload systemd units", _if=lambda: any(c.did_change() for c in dropin_ops)
    )
    sentinel_package = [paths["sentinel_package"]] if V["redis_sentinel"] else []
    packages("Install the server", paths["packages"] + sentinel_package)
    helper("redis")
    check = f"/usr/local/sbin/webtier-redis-check {paths['server']}"
    # TLS files (redis_tls) before the configuration: its check loads them.
    tls_ops = [put(f) for f in mine if "/tls/" in f.template]
    changed = [*dropin_ops, *tls_ops, put(acl, f"{check} {paths['conf']} --aclfile %s")]
    # Sentinel rewrites redis.conf at a failover in its own format: a file that says
    # what the template says stays as it is (the role's redis_config_file).
    if not same_directives(conf):
        changed.append(put(conf, f"{check} %s"))
    started = systemd.service(
        name="Keep the server enabled and running",
        service=paths["service"],
        running=True,
        enabled=True,
    )
    server.shell(
        name="Restart the server for its new configuration",
        commands=[f"systemctl restart {paths['service']}"],
        _if=lambda: not started.did_change() and any(c.did_change() for c in changed),
    )
    if V["redis_sentinel"]:
        ops = zip(dropins, dropin_ops, strict=True)
        sentinel(mine, paths, [op for f, op in ops if "sentinel" in f.dest])


def sentinel(mine: list[configs.File], paths: dict, dropin_ops: list) -> None:
    """Sentinel keeps its state in its file and rewrites it: the seed is written only
    while the file is not yet ours (the package's sample), as the role does."""
    seed = next(f for f in mine if f.dest == paths["sentinel_conf"])
    ours = _fact(f"grep -c 'Managed by webtier' {seed.dest} 2>/dev/null || true")
    check = f"/usr/local/sbin/webtier-redis-check {paths['sentinel_server']} %s --sentinel"
    seeded = [] if ours not in ("", "0") else [put(seed, check)]
    started = systemd.service(
        name="Keep Sentinel enabled and running",
        service=paths["sentinel_service"],
        running=True,
        enabled=True,
    )
    server.shell(
        name="Restart Sentinel on its new seed or drop-in",
        commands=[f"systemctl restart {paths['sentinel_service']}"],
        _if=lambda: not started.did_change() and any(c.did_change() for c in seeded + dropin_ops),
    )
    if seeded:  # a new seed holds the inventory's values
        return
    # Settings changed after the seed are applied live, the way Sentinel expects (the
    # role's "Apply quorum and timeouts with SENTINEL SET").
    wanted = {
        "quorum": V["redis_sentinel_quorum"],
        "down-after-milliseconds": V["redis_sentinel_down_after_ms"],
        "failover-timeout": V["redis_sentinel_failover_timeout_ms"],
        "parallel-syncs": V["redis_sentinel_parallel_syncs"],
    }
    live = _python_fact(
        _sentinel_client() + 'answer = client.execute_command("SENTINEL", "MASTER", name)\n'
        "print(*answer if isinstance(answer, list) else "
        "[w for kv in answer.items() for w in kv])\n"
    ).split()
    current = dict(zip(live[::2], live[1::2], strict=False))
    for key, value in wanted.items():
        if current and current.get(key) != str(value):
            call = f'client.execute_command("SENTINEL", "SET", name, {key!r}, {str(value)!r})'
            server.shell(
                name=f"Set Sentinel's {key} to {value}",
                commands=[_python(_sentinel_client() + call)],
            )


def python_app(mine: list[configs.File]) -> dict:
    """The release the app servers run; returns what they need to know about it."""
    if V["python_app_switch_only"]:
        raise DeployError(f"{NAME}: python_app_switch_only (deploy.yml's rollback) is Ansible only")
    name, user, root = V["python_app_name"], V["python_app_user"], V["python_app_root"]
    release = V["__python_app_release_dir"]
    venv = V["__python_app_venv"]
    git = ["git", "openssh-client"] if V["python_app_git_repo"] else []
    packages(
        "Install Python and venv, and what the app needs",
        ["python3", "python3-venv", *V["python_app_system_packages"], *git],
    )
    helper("python_app")
    server.group(name="Create the app's group", group=user, system=True)
    server.user(
        name="Create the app's user",
        user=user,
        group=user,
        system=True,
        shell="/usr/sbin/nologin",
        home=root,
        create_home=False,
        ensure_home=False,  # the release tree stays root's, read-only for the app
    )
    running = _fact(f"readlink {root}/current || true")
    asked = str(V["python_app_release"] or "")
    if running and asked and asked != running.rsplit("/", 1)[-1]:
        # pyinfra would restart every host's servers at once: a location whose servers
        # all restart together has none serving. deploy.yml never empties a location.
        raise DeployError(
            f"{NAME}: python_app_release={asked} is a new release (the host runs "
            f"{running.rsplit('/', 1)[-1]}); pyinfra has no release path: release it with "
            f"ansible-playbook playbooks/deploy.yml -e deploy_release={asked}, which never "
            "leaves a location of a load balancer without a serving server"
        )
    for path in (root, f"{root}/releases", release):
        files.directory(name=f"Directory {path}", path=path, user="root", group="root", mode="0755")
    code = []
    if V["python_app_src"]:
        src = V["python_app_src"]
        code.append(
            files.sync(
                name="Copy the app's source",
                src=derive.app_source(src, os.getcwd()),
                dest=f"{release}/src",
                user="root",
                group="root",
                mode="0644",
                dir_mode="0755",
                exclude=["__pycache__", "*.pyc"],
            )
        )
    if V["python_app_git_repo"]:
        code.append(git_checkout(release))
    server_requirements = _server_requirements()
    lines = (
        [V["python_app_pip_spec"] or f"{release}/src"]
        if (V["python_app_pip_spec"] or V["python_app_packaged"])
        else []
    )
    if V["python_app_requirements_file"]:
        lines.append(f"-r {release}/src/{V['python_app_requirements_file']}")
    lines += sorted([*V["python_app_requirements"], *server_requirements])
    manifest = files.put(
        name="Record what the release installs",
        src=StringIO("".join(f"{line}\n" for line in lines)),
        dest=f"{release}/requirements.webtier.txt",
        mode="0644",
    )
    venv_op = server.shell(
        name="Create the release's virtualenv",
        commands=[f"python3 -m venv {venv}"],
        _if=lambda: host.get_fact(Sha1File, path=f"{venv}/bin/python") is None,
    )
    index = ["--index-url", V["python_app_pip_index_url"]] if V["python_app_pip_index_url"] else []
    pip = f"{venv}/bin/pip install --no-input --disable-pip-version-check"
    installed = server.shell(
        name="Install the app and its requirements into the virtualenv",
        commands=[f"{pip} {' '.join(index)} -r {release}/requirements.webtier.txt"],
        _if=lambda: manifest.did_change() or venv_op.did_change(),
    )
    server.shell(
        name="Reinstall the app when its source changed within the release",
        commands=[f"{pip} --force-reinstall --no-deps {release}/src"],
        _if=lambda: (
            V["python_app_packaged"]
            and not V["python_app_pip_spec"]
            and not installed.did_change()
            and any(c.did_change() for c in code)
        ),
    )
    files.directory(name="Env file directory", path="/etc/webtier/apps", mode="0755")
    env_ops = [put(f) for f in mine]
    release_commands(release, venv, running)
    link = files.link(
        name="Switch the current link to this release", path=f"{root}/current", target=release
    )
    return {
        "name": name,
        "path": release,
        "venv": venv,
        "env_files": [f"/etc/webtier/apps/{name}.env", f"/etc/webtier/apps/{name}.secret.env"],
        "code_changed": lambda: (
            link.did_change() or manifest.did_change() or any(c.did_change() for c in code)
        ),
        "env_changed": lambda: any(e.did_change() for e in env_ops),
    }


def git_checkout(release: str):
    """The release's source from python_app_git_repo at python_app_git_version, with the
    deploy key (root only), as the role's git task: cloned once per release."""
    key = f"/etc/webtier/apps/{V['python_app_name']}.deploy-key"
    ssh = "ssh -o StrictHostKeyChecking=accept-new"
    if V["python_app_git_key"]:
        files.put(
            name="Write the deploy key of the app's repository (root only)",
            src=StringIO(V["python_app_git_key"].strip() + "\n"),
            dest=key,
            mode="0600",
        )
        ssh += f" -i {key} -o IdentitiesOnly=yes"
    src, version = f"{release}/src", V["python_app_git_version"]
    return server.shell(
        name="Check out the app's source from its repository",
        commands=[
            f"rm -rf {src}",
            f"GIT_SSH_COMMAND='{ssh}' git clone --quiet --no-checkout "
            f"{V['python_app_git_repo']} {src}",
            f"git -C {src} checkout --quiet {version}",
        ],
        _if=lambda: host.get_fact(Sha1File, path=f"{src}/.git/HEAD") is None,
    )


def release_commands(release: str, venv: str, running: str) -> None:
    """python_app_release_commands, as the role runs them: before the switch, only for
    a release the host does not run yet, ``once`` ones on the app's first host only."""
    commands = V["python_app_release_commands"]
    if not commands or running == release:
        return
    user, name = V["python_app_user"], V["python_app_name"]
    files.directory(
        name="The release's directory the app's user may write",
        path=f"{release}/static",
        user=user,
        group=user,
        mode="0755",
    )
    first = configs.app_first_host(name, INVENTORY.members, INVENTORY.all_host_vars())
    for entry in commands:
        if entry.get("once") and first != NAME:
            continue
        argv = configs.release_command(
            entry["command"], name, user, release, venv, V["__python_app_env_dir"]
        )
        server.shell(name=f"Release command: {entry['command']}", commands=[shlex.join(argv)])


def _server_requirements() -> list[str]:
    server_kind = V.get("webtier_app_server")
    if server_kind == "gunicorn":
        # as the role passes them: the empty entries (a path not taken) dropped
        return [r for r in V["__gunicorn_requirements"][V["gunicorn_worker_class"]] if r]
    return []


def _app_run(app: dict, unit: configs.File, command: str) -> Callable[[], str]:
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


def gunicorn(mine: list[configs.File], app: dict) -> None:
    conf, unit = mine
    files.directory(name="Gunicorn configuration directory", path="/etc/gunicorn", mode="0755")
    check = f"{app['venv']}/bin/gunicorn --check-config --config {{}}"
    conf_op = put(conf, _app_run(app, unit, check))
    unit_op = put(unit)
    _serve(
        V["__gunicorn_unit"],
        restart=lambda: unit_op.did_change() or app["code_changed"](),
        reload=lambda: conf_op.did_change() or app["env_changed"](),
        unit_changed=unit_op.did_change,
    )


def uwsgi(mine: list[configs.File], app: dict) -> None:
    wsgi, ini, unit = mine
    packages("Install uWSGI", ["uwsgi-core", "uwsgi-plugin-python3"])
    helper("uwsgi")
    load_app = f'{app["venv"]}/bin/python -c "import runpy, sys; runpy.run_path(sys.argv[1])" {{}}'
    wsgi_op = put(wsgi, _app_run(app, unit, load_app))
    files.directory(name="uWSGI configuration directory", path="/etc/uwsgi/webtier", mode="0755")
    ini_op = put(ini, _app_run(app, unit, "/usr/local/sbin/webtier-uwsgi-check {}"))
    unit_op = put(unit)
    _serve(
        V["__uwsgi_unit"],
        # The ini is read at start; new code alone is a chain reload.
        restart=lambda: ini_op.did_change() or unit_op.did_change() or app["env_changed"](),
        reload=lambda: app["code_changed"]() or wsgi_op.did_change(),
        unit_changed=unit_op.did_change,
    )


def celery_worker(mine: list[configs.File], app: dict) -> None:
    """The role's launcher (checked by importing it as a unit runs it), one unit per
    queue, the units of queues no longer listed stopped and removed, and a restart (a
    warm shutdown drains the worker) for a new release, environment, launcher or unit."""
    launcher = next(f for f in mine if f.dest.endswith("/webtier_celery.py"))
    units = [f for f in mine if f is not launcher]
    load = f'{app["venv"]}/bin/python -c "import runpy, sys; runpy.run_path(sys.argv[1])" {{}}'
    launcher_op = put(launcher, _app_run(app, units[0], load))
    unit_ops = [put(unit) for unit in units]
    prefix = V["__celery_worker_unit_prefix"]
    wanted = {unit.dest.rsplit("/", 1)[1] for unit in units}
    listed = _fact(f"ls /etc/systemd/system | grep -E '^{re.escape(prefix)}-.*[.]service$' || true")
    stale = sorted(set(listed.split()) - wanted)
    for name in stale:
        systemd.service(name=f"Stop {name}", service=name, running=False, enabled=False)
        files.file(name=f"Remove {name}", path=f"/etc/systemd/system/{name}", present=False)
    systemd.daemon_reload(
        name="Reload systemd units",
        _if=lambda: bool(stale) or any(o.did_change() for o in unit_ops),
    )
    for unit, unit_op in zip(units, unit_ops, strict=True):
        name = unit.dest.rsplit("/", 1)[1]
        started = systemd.service(
            name=f"Keep {name} enabled and running", service=name, running=True, enabled=True
        )
        server.shell(
            name=f"Restart {name}",
            commands=[f"systemctl restart {name}"],
            _if=lambda started=started, unit_op=unit_op: (
                not started.did_change()
                and (
                    unit_op.did_change()
                    or launcher_op.did_change()
                    or app["code_changed"]()
                    or app["env_changed"]()
                )
            ),
        )


def _serve(unit: str, restart, reload, unit_changed) -> None:
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


def nginx(mine: list[configs.File]) -> None:
    self_signed = [s for s in V["nginx_sites"] if (s.get("tls") or {}).get("self_signed")]
    packages("Install nginx", ["nginx", "logrotate"] + (["openssl"] if self_signed else []))
    for site in self_signed:
        tls = site["tls"]
        files.directory(
            name=f"Directory of {tls['certificate']}", path=tls["certificate"].rsplit("/", 1)[0]
        )
        server.shell(
            name=f"Self-signed certificate of {site['name']}",
            commands=[
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                f" -days 825 -subj /CN={NAME}"
                f" -keyout {tls['certificate_key']} -out {tls['certificate']}"
            ],
            _if=lambda path=tls["certificate"]: host.get_fact(Sha1File, path=path) is None,
        )
    tree = [f for f in mine if f.dest.startswith("/etc/nginx/")]
    (dropin,) = [f for f in mine if f not in tree]
    stage = "/var/lib/webtier/nginx-candidate"
    for file in tree:
        files.put(
            name=f"Candidate {file.dest}",
            src=StringIO(file.content),
            dest=stage + file.dest.removeprefix("/etc/nginx"),
            create_remote_dir=True,
            mode=file.mode,
        )
    helper("nginx")
    live_differs = any(
        host.get_fact(Sha1File, path=f.dest) != hashlib.sha1(f.content.encode()).hexdigest()
        for f in [*tree, dropin]
    )
    if live_differs:
        # In the unit's sandbox, with the candidate drop-in (files/webtier-unit-run),
        # where the nginx role puts it too.
        dropin_candidate = candidate(dropin, f"{stage}/systemd/{dropin.dest.rsplit('/', 1)[1]}")
        server.shell(
            name="Check the whole candidate tree with nginx -t",
            commands=[
                f"{CHECK_IN_UNIT} nginx --dropin {dropin_candidate} -- "
                f"nginx -t -q -c {stage}/nginx.conf"
            ],
        )
    live = [put(f) for f in tree]
    dropin_op = put(dropin)
    systemd.daemon_reload(name="Reload systemd units", _if=dropin_op.did_change)
    started = systemd.service(
        name="Keep nginx enabled and running", service="nginx", running=True, enabled=True
    )
    server.shell(
        name="Restart nginx for its descriptor limit",
        commands=[f"{CHECK_IN_UNIT} nginx -- nginx -t -q", "systemctl restart nginx"],
        _if=lambda: not started.did_change() and dropin_op.did_change(),
    )
    server.shell(
        name="Reload nginx",
        commands=[f"{CHECK_IN_UNIT} nginx -- nginx -t -q", "systemctl reload nginx"],
        _if=lambda: (
            not started.did_change()
            and not dropin_op.did_change()
            and any(o.did_change() for o in live)
        ),
    )


def _superuser_sql(sql: str) -> str:
    """A command running ``sql`` as PostgreSQL's superuser over the local socket."""
    quoted = sql.replace("'", "'\\''")
    return f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c '{quoted}'"


def postgresql(mine: list[configs.File], facts: configs.Facts) -> None:
    """As the postgresql role: the candidates checked first, a reload for what changed
    and a restart only for what PostgreSQL reports pending, each user's verifier and
    each database created or changed only when it differs, PgBouncer reloaded (restarted
    when its listeners changed)."""
    derived = configs.postgresql_derived(V, facts.release, facts.memtotal_mb)
    version = derived["__postgresql_version"]
    unit = f"postgresql@{version}-main"
    by_template = {f.template.rsplit("/", 1)[1]: f for f in mine}
    dropin = put(next(f for f in mine if "pgbouncer.service.d" in f.dest))
    systemd.daemon_reload(name="Reload systemd units", _if=dropin.did_change)
    packages("Install PostgreSQL and PgBouncer", V["__postgresql_packages"])
    for name in ("webtier-postgresql-check", "webtier-pgbouncer-check"):
        files.put(
            name=f"Install {name}",
            src=str(ROOT / "roles/postgresql/files" / name),
            dest=f"/usr/local/sbin/{name}",
            mode="0755",
        )
    server_files = [
        put(
            next(f for f in mine if f.dest.endswith("/conf.d/webtier.conf")),
            f"/usr/local/sbin/webtier-postgresql-check {version} %s",
        ),
        put(by_template["pg_ident.conf.j2"]),
        put(by_template["pg_hba.conf.j2"]),
    ]
    started = systemd.service(
        name=f"Keep {unit} enabled and running", service=unit, running=True, enabled=True
    )
    pending = _superuser_sql("SELECT count(*) FROM pg_settings WHERE pending_restart")
    hba_errors = _superuser_sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL")
    server.shell(
        name=f"Reload {unit} (a restart only for what it reports pending)",
        commands=[
            f"systemctl reload {unit}",
            f'test "$({hba_errors})" = 0 || {{ echo "pg_hba.conf has errors" >&2; exit 1; }}',
            f'test "$({pending})" = 0 || systemctl restart {unit}',
        ],
        _if=lambda: not started.did_change() and any(o.did_change() for o in server_files),
    )
    for user in derived["__postgresql_users"]:
        name, verifier = user["name"], user["verifier"]
        stored = _superuser_sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{name}'")
        server.shell(
            name=f"User {name} with its password's verifier",
            commands=[
                _superuser_sql(
                    f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') "
                    f'THEN CREATE ROLE "{name}"; END IF; END$$'
                ),
                _superuser_sql(
                    f'ALTER ROLE "{name}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE '
                    f"PASSWORD '{verifier}'"
                ),
            ],
            _if=lambda stored=stored, verifier=verifier: _fact(f"{stored} || true") != verifier,
        )
    for database in V["postgresql_databases"]:
        name, owner = database["name"], database["user"]
        exists = _superuser_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        server.shell(
            name=f"Database {name}, owned by {owner}",
            commands=[f"runuser -u postgres -- createdb -O {owner} {name}"],
            _if=lambda exists=exists: _fact(f"{exists} || true") != "1",
        )
    userlist = put(by_template["userlist.txt.j2"])
    ini = by_template["pgbouncer.ini.j2"]
    live_ini = _fact("cat /etc/pgbouncer/pgbouncer.ini 2>/dev/null || true")
    listeners_change = configs.pgbouncer_listeners(live_ini) != configs.pgbouncer_listeners(
        ini.content
    )
    ini_op = put(ini, "/usr/local/sbin/webtier-pgbouncer-check %s")
    bouncer = systemd.service(
        name="Keep pgbouncer enabled and running", service="pgbouncer", running=True, enabled=True
    )
    server.shell(
        name="Restart pgbouncer (its descriptor limit or its listeners changed)",
        commands=["systemctl restart pgbouncer"],
        _if=lambda: (
            not bouncer.did_change()
            and (dropin.did_change() or (ini_op.did_change() and listeners_change))
        ),
    )
    server.shell(
        name="Reload pgbouncer",
        commands=["systemctl reload pgbouncer"],
        _if=lambda: (
            not bouncer.did_change()
            and not dropin.did_change()
            and not (ini_op.did_change() and listeners_change)
            and (ini_op.did_change() or userlist.did_change())
        ),
    )


def main() -> None:
    global V  # noqa: PLW0603 (the host's variables, now with what was read from it)
    facts = read_facts()
    V = configs.variables(INVENTORY, NAME, ROLES, facts)
    # The roles' checks against this host (validate.yml under Ansible), before any
    # operation is queued; the inventory-wide ones ran in inventory.py (preflight).
    checked = host_facts(facts)
    for note in live.notes(NAME, ROLES, V, checked):
        logger.warning(note)
    findings = live.check(NAME, ROLES, V, checked)
    if findings:
        raise DeployError(live.report(findings))
    rendered = configs.host_files(INVENTORY, NAME, facts)
    by_role = {role: [f for f in rendered if f.role == role] for role in ROLES}
    app = None
    for role in ROLES:
        if role == "kernel_tuning":
            kernel_tuning(by_role[role], facts)
        elif role == "firewall":
            firewall(by_role[role])
        elif role == "redis":
            redis(by_role[role], facts)
        elif role == "python_app":
            app = python_app(by_role[role])
        elif role == "gunicorn":
            gunicorn(by_role[role], app)
        elif role == "uwsgi":
            uwsgi(by_role[role], app)
        elif role == "celery_worker":
            celery_worker(by_role[role], app)
        elif role == "postgresql":
            postgresql(by_role[role], facts)
        elif role == "nginx":
            nginx(by_role[role])


main()
