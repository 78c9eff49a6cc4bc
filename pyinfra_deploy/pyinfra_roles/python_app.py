"""python_app as the role does it: the release's source and virtualenv, its environment
files, its release commands, the switch of the current link. Like the role, an empty
python_app_release keeps the release the host runs; another release than the one a
host runs is refused, naming deploy.yml (pyinfra would restart every host's servers at
once)."""

from __future__ import annotations

import os
import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api.exceptions import DeployError
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files, server
from pyinfra_roles.common import fact, helper, packages, put, this, upload

from webtier.files import configs
from webtier.files.app import app_first_host, release_command
from webtier.files.facts import Facts
from webtier.model import derive


def git_checkout(release: str):
    """The release's source from python_app_git_repo at python_app_git_version, with the
    deploy key (root only), as the role's git task: cloned once per release."""
    key = f"/etc/webtier/apps/{this.v['python_app_name']}.deploy-key"
    ssh = "ssh -o StrictHostKeyChecking=accept-new"
    if this.v["python_app_git_key"]:
        deploy_key = configs.File(
            role="python_app",
            template="",
            dest=key,
            owner="root",
            group="root",
            mode="0600",
            content=this.v["python_app_git_key"].strip() + "\n",
            secret=True,
        )
        upload(deploy_key, key, "Write the deploy key of the app's repository (root only)")
        ssh += f" -i {key} -o IdentitiesOnly=yes"
    src, version, repo = (
        f"{release}/src",
        this.v["python_app_git_version"],
        this.v["python_app_git_repo"],
    )
    # Argument lists, quoted: no inventory string is ever read as shell.
    return server.shell(
        name="Check out the app's source from its repository",
        commands=[
            shlex.join(["rm", "-rf", src]),
            f"GIT_SSH_COMMAND={shlex.quote(ssh)} "
            + shlex.join(["git", "clone", "--quiet", "--no-checkout", "--", repo, src]),
            shlex.join(["git", "-C", src, "checkout", "--quiet", version]),
        ],
        _if=lambda: host.get_fact(Sha1File, path=f"{src}/.git/HEAD") is None,
    )


def release_commands(release: str, venv: str, running: str) -> None:
    """python_app_release_commands, as the role runs them: before the switch, only for
    a release the host does not run yet, ``once`` ones on the app's first host only."""
    commands = this.v["python_app_release_commands"]
    if not commands or running == release:
        return
    user, name = this.v["python_app_user"], this.v["python_app_name"]
    files.directory(
        name="The release's directory the app's user may write",
        path=f"{release}/static",
        user=user,
        group=user,
        mode="0755",
    )
    first = app_first_host(name, this.inventory.members, this.inventory.all_host_vars())
    for entry in commands:
        if entry.get("once") and first != this.name:
            continue
        argv = release_command(
            entry["command"], name, user, release, venv, this.v["__python_app_env_dir"]
        )
        server.shell(name=f"Release command: {entry['command']}", commands=[shlex.join(argv)])


def server_requirements() -> list[str]:
    server_kind = this.v.get("webtier_app_server")
    if server_kind == "gunicorn":
        # as the role passes them: the empty entries (a path not taken) dropped
        return [r for r in this.v["__gunicorn_requirements"][this.v["gunicorn_worker_class"]] if r]
    return []


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    """The release the app servers run; returns what they need to know about it."""
    if this.v["python_app_switch_only"]:
        raise DeployError(
            f"{this.name}: python_app_switch_only (deploy.yml's rollback) is Ansible only"
        )
    name, user, root = (
        this.v["python_app_name"],
        this.v["python_app_user"],
        this.v["python_app_root"],
    )
    release = this.v["__python_app_release_dir"]
    venv = this.v["__python_app_venv"]
    git = ["git", "openssh-client"] if this.v["python_app_git_repo"] else []
    packages(
        "Install Python and venv, and what the app needs",
        ["python3", "python3-venv", *this.v["python_app_system_packages"], *git],
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
    running = fact(f"readlink {shlex.quote(root + '/current')} || true")
    asked = str(this.v["python_app_release"] or "")
    if running and asked and asked != running.rsplit("/", 1)[-1]:
        # pyinfra would restart every host's servers at once: a location whose servers
        # all restart together has none serving. deploy.yml never empties a location.
        raise DeployError(
            f"{this.name}: python_app_release={asked} is a new release (the host runs "
            f"{running.rsplit('/', 1)[-1]}); pyinfra has no release path: release it with "
            f"ansible-playbook playbooks/deploy.yml -e deploy_release={asked}, which never "
            "leaves a location of a load balancer without a serving server"
        )
    for path in (root, f"{root}/releases", release):
        files.directory(name=f"Directory {path}", path=path, user="root", group="root", mode="0755")
    code = []
    if this.v["python_app_src"]:
        src = this.v["python_app_src"]
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
    if this.v["python_app_git_repo"]:
        code.append(git_checkout(release))
    for_server = server_requirements()
    lines = (
        [this.v["python_app_pip_spec"] or f"{release}/src"]
        if (this.v["python_app_pip_spec"] or this.v["python_app_packaged"])
        else []
    )
    if this.v["python_app_requirements_file"]:
        lines.append(f"-r {release}/src/{this.v['python_app_requirements_file']}")
    lines += sorted([*this.v["python_app_requirements"], *for_server])
    manifest = files.put(
        name="Record what the release installs",
        src=StringIO("".join(f"{line}\n" for line in lines)),
        dest=f"{release}/requirements.webtier.txt",
        mode="0644",
    )
    venv_op = server.shell(
        name="Create the release's virtualenv",
        commands=[shlex.join(["python3", "-m", "venv", venv])],
        _if=lambda: host.get_fact(Sha1File, path=f"{venv}/bin/python") is None,
    )
    index = (
        ["--index-url", this.v["python_app_pip_index_url"]]
        if this.v["python_app_pip_index_url"]
        else []
    )
    pip = [f"{venv}/bin/pip", "install", "--no-input", "--disable-pip-version-check"]
    installed = server.shell(
        name="Install the app and its requirements into the virtualenv",
        commands=[shlex.join([*pip, *index, "-r", f"{release}/requirements.webtier.txt"])],
        _if=lambda: manifest.did_change() or venv_op.did_change(),
    )
    server.shell(
        name="Reinstall the app when its source changed within the release",
        commands=[shlex.join([*pip, "--force-reinstall", "--no-deps", f"{release}/src"])],
        _if=lambda: (
            this.v["python_app_packaged"]
            and not this.v["python_app_pip_spec"]
            and not installed.did_change()
            and any(c.did_change() for c in code)
        ),
    )
    files.directory(name="Env file directory", path="/etc/webtier/apps", mode="0755")
    # The env files (a change restarts the app); the database tier's CA, which libpq
    # reads at each connection, restarts nothing (as in the role).
    env_ops = [put(f) for f in mine if f.dest.endswith(".env")]
    for other in (f for f in mine if not f.dest.endswith(".env")):
        put(other)
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
