"""The scaffold as a new user meets it, end to end, on the one-app-host shape it writes.

One module-scoped run, as docs/own-app.md tells it: ``webtier-new-env --local`` writes an
environment of local containers (Debian 13); the test fills it by script the way a user
edits it: a database tier, the Django demo as an app without packaging, served from a
local git repository (a bare clone in the app container), its secrets added to the
vault. Then: preflight, the containers, ``site.yml``; a release of v2, which adds a
migration, through ``deploy.yml`` while 64 keep-alive clients load the database-backed
page through the load balancer (one app host: the release goes live in place); pyinfra
over the same environment (no change); the teardown (nothing of the environment left).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from webtier import ROOT, newenv
from webtier.model import vault
from webtier.ops import drills

ENV = "wtscaffold"
APP = f"{ENV}-app1"
LB = f"{ENV}-lb1"
DB = f"{ENV}-db1"
CLIENTS = 64
#: The load runs until the release is done (then it is stopped), at most this long.
RELEASE_LIMIT_S = 900
PROBE = (ROOT / "playbooks" / "files" / "webtier_probe.py").read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, timeout=1200, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
    )
    if check and proc.returncode:
        pytest.fail(
            f"{argv} exited {proc.returncode}:\n{proc.stdout[-5000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def git(cwd: Path, *argv: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *argv],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def leftovers() -> list[str]:
    """Containers and networks of the environment still on this machine."""
    containers = run(
        ["docker", "ps", "-aq", "--filter", f"label=webtier.sandbox={ENV}"], check=False
    ).stdout.split()
    networks = run(["docker", "network", "ls", "-q", "--filter", f"name=^{ENV}$"]).stdout.split()
    return containers + networks


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment, written by the scaffold and filled in by script."""
    base = tmp_path_factory.mktemp("scaffold")
    inventory, password = base / "inventory" / ENV, base / "vault-password"
    port = free_port()
    newenv.create(inventory, password, local=True, port=port)

    # The app: the Django demo, without packaging, from a git repository (v1, then v2
    # with a migration), as a user's own project kept in git.
    src = base / "notes"
    shutil.copytree(ROOT / "apps/demo_django", src)
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "v1")
    git(src, "tag", "v1")
    drills.add_a_migration(src)
    git(src, "add", "-A")
    git(src, "commit", "-qm", "v2: notes get a tag")
    git(src, "tag", "v2")
    git(base, "clone", "-q", "--bare", str(src), "notes.git")

    hosts = inventory / "hosts.yml"
    edit_yaml(
        hosts,
        lambda d: d["all"]["children"].update(
            {"databases": {"hosts": {f"db1.{ENV}": {"ansible_host": DB}}}}
        ),
    )
    app = inventory / "group_vars/appservers/app.yml"

    def the_app(d):
        del d["python_app_src"]
        d.update(
            python_app_name="notes",
            python_app_git_repo="/srv/repos/notes.git",
            python_app_git_version="v1",
            python_app_packaged=False,
            python_app_requirements_file="requirements.txt",
            python_app_entrypoint="demo_django.wsgi:application",
            python_app_database_group="databases",
            python_app_release_commands=[
                {"command": "python manage.py migrate --noinput", "once": True},
                {"command": "python manage.py collectstatic --noinput"},
            ],
            python_app_secret_env={"DJANGO_SECRET_KEY": "{{ vault_django_secret_key }}"},
        )

    edit_yaml(app, the_app)
    # The app's own Redis user follows its name (docs/own-app.md).
    edit_yaml(
        inventory / "group_vars/redis/redis.yml",
        lambda d: d["redis_app_users"][0].update(name="notes"),
    )
    (inventory / "group_vars/databases").mkdir()
    (inventory / "group_vars/databases/postgresql.yml").write_text(
        "---\npostgresql_databases:\n"
        '  - {name: notes, user: notes, password: "{{ vault_postgresql_notes_password }}"}\n'
    )
    secrets = inventory / "group_vars/all/vault.yml"
    plain = vault.decrypt(secrets, password)
    plain += "vault_django_secret_key: a-long-random-key-of-the-scaffold-test-0123456789\n"
    plain += "vault_postgresql_notes_password: notes-password-of-the-scaffold-test\n"
    secrets.write_text(vault.encrypt(plain, ENV, password))

    # What an aborted earlier run left, away first (the teardown's own way is tested below).
    for item in leftovers():
        run(["docker", "rm", "-f", item], check=False)
        run(["docker", "network", "rm", item], check=False)
    yield {
        "base": base,
        "inventory": inventory,
        "password": password,
        "port": port,
        "vault": ["--vault-id", f"{ENV}@{password}"],
    }
    run(
        [
            "ansible-playbook",
            "-i",
            inventory,
            "playbooks/sandbox.yml",
            "--vault-id",
            f"{ENV}@{password}",
            "-e",
            "sandbox_state=absent",
        ],
        check=False,
    )


@pytest.fixture(scope="module")
def converged(env):
    inv, vault_id = env["inventory"], env["vault"]
    preflight = run(["webtier-preflight", inv], check=False)
    run(["ansible-playbook", "-i", inv, "playbooks/sandbox.yml", *vault_id])
    # The git repository the app host clones from (a path on the host).
    run(["docker", "exec", APP, "mkdir", "-p", "/srv/repos"])
    run(["docker", "cp", env["base"] / "notes.git", f"{APP}:/srv/repos/"])
    started = time.monotonic()
    site = run(["ansible-playbook", "-i", inv, "site.yml", *vault_id], timeout=1800)
    return {"preflight": preflight, "site": site, "site_s": time.monotonic() - started}


def test_preflight_passes_and_site_yml_converges_the_filled_scaffold(converged, env):
    assert converged["preflight"].returncode == 0, converged["preflight"].stdout
    recap = converged["site"].stdout[converged["site"].stdout.rindex("PLAY RECAP") :]
    assert "failed=0" in recap, recap
    assert "unreachable=0" in recap, recap
    # The database host's memory came from what its container grants (no
    # webtier_memory_mb in the scaffold), through the role's auto.
    shared = drills.psql(DB, "SHOW shared_buffers")
    assert re.fullmatch(r"\d+MB", shared), shared


def load(seconds: int) -> dict:
    """64 keep-alive clients on the database-backed page, through the load balancer."""
    proc = subprocess.run(
        [
            "docker",
            "exec",
            "-i",
            LB,
            "python3",
            "-",
            "http",
            "127.0.0.1",
            "80",
            "/db",
            str(CLIENTS),
            str(seconds),
        ],
        input=PROBE,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def released(env, converged):
    """v2 (a new migration) released through deploy.yml under load."""
    inv, vault_id = env["inventory"], env["vault"]
    out: dict = {}

    def deploy() -> None:
        time.sleep(3)
        started = time.monotonic()
        out["deploy"] = run(
            [
                "ansible-playbook",
                "-i",
                inv,
                "playbooks/deploy.yml",
                *vault_id,
                "-e",
                "deploy_release=2",
                "-e",
                "python_app_git_version=v2",
            ],
            check=False,
        )
        out["deploy_s"] = time.monotonic() - started
        time.sleep(3)
        # The release is done: the load stops now, with its counts (SIGTERM).
        run(["docker", "exec", LB, "pkill", "-TERM", "-f", "python3 - http"], check=False)

    thread = threading.Thread(target=deploy)
    thread.start()
    out["load"] = load(RELEASE_LIMIT_S)
    thread.join()
    # The figures, for whoever reads the run (make test keeps reports/).
    report = ROOT / "reports" / "scaffold" / "release.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        json.dumps(
            {
                "deploy_rc": out["deploy"].returncode,
                "deploy_s": round(out["deploy_s"], 1),
                "site_yml_s": round(converged["site_s"], 1),
                "load": {"url": "http://lb1/db", "clients": CLIENTS, **out["load"]},
            },
            indent=1,
        )
    )
    # The inventory records the version the hosts run, as a user's would.
    edit_yaml(
        inv / "group_vars/appservers/app.yml", lambda d: d.update(python_app_git_version="v2")
    )
    return out


def test_a_release_with_a_migration_on_the_only_app_host_fails_no_request(released):
    deploy = released["deploy"]
    assert deploy.returncode == 0, deploy.stdout[-5000:]
    flat = " ".join(deploy.stdout.split())
    assert f"app1.{ENV}: in place (a stand-in of release 1" in flat, flat[-3000:]
    assert released["deploy_s"] + 3 < RELEASE_LIMIT_S, "the load ended before the release"
    load = released["load"]
    assert load["sent"] > 0, load
    assert load["failed"] == 0, load
    # The slowest request is a figure, not an assertion (it is in reports/scaffold/
    # release.json): beside the Molecule lanes on 2 cores it measures the machine.


def test_the_migration_ran_once_and_the_new_release_serves(env, released):
    applied = drills.migration_applied(DB)
    assert applied == 1
    current = run(["docker", "exec", APP, "readlink", "/srv/notes/current"]).stdout.strip()
    assert current.endswith("/releases/2")
    assert load(2)["failed"] == 0


def test_pyinfra_over_the_same_environment_changes_nothing(env, released):
    proc = run(
        ["webtier-pyinfra", env["inventory"], "--vault-password-file", env["password"], "-y"],
        timeout=1200,
    )
    total = re.search(r"Grand total +(\d+) +(\S+) +(\S+) +(\d+)", proc.stderr)
    assert total, proc.stderr[-3000:]
    assert total.group(2, 3) == ("-", "-"), proc.stderr[-3000:]
    assert total.group(4) == total.group(1), proc.stderr[-3000:]


def test_the_teardown_leaves_nothing(env, released):
    run(
        [
            "ansible-playbook",
            "-i",
            env["inventory"],
            "playbooks/sandbox.yml",
            *env["vault"],
            "-e",
            "sandbox_state=absent",
        ]
    )
    assert leftovers() == []
