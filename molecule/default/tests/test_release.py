"""playbooks/deploy.yml releases the app tier host by host (app3, alone in its upstream,
in place); site.yml afterwards keeps what it released; a release that fails is rolled
back to the code that ran and stops the run; draining the last serving member of a
location is refused before any change."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter

import pytest
from conftest import ROOT, get
from scenario import flat_output, run_playbook
from test_stack import flask_kinds

# deploy.yml is Ansible's: the pyinfra scenario, which shares these tests, leaves it to
# the Ansible one (each release builds three virtualenvs: minutes of CI).
pytestmark = pytest.mark.skipif(
    os.environ.get("MOLECULE_SCENARIO_NAME") == "pyinfra", reason="releases are deploy.yml's"
)

#: App hosts in deploy.yml's order (the appservers group's) and their server units.
UNITS = {
    "app1": "gunicorn-demo",
    "app2": "uwsgi-demo",
    "app3": "gunicorn-demo",
    "app4": "gunicorn-demo",
}
APPS = tuple(UNITS)
RELEASE = time.strftime("r%H%M%S")


def deploy(*extra: str):
    proc = run_playbook(ROOT / "playbooks/deploy.yml", *extra, timeout=1200)
    return proc.returncode, flat_output(proc)


def current(host) -> str:
    return host.check_output("readlink /srv/demo/current").rsplit("/", 1)[-1]


def main_pids(instances) -> dict[str, str]:
    return {
        name: instances[name].check_output(f"systemctl show -p MainPID --value {unit}")
        for name, unit in UNITS.items()
    }


def served(instances) -> Counter:
    lb = instances["lb1"]
    kinds = Counter()
    for url in ["http://127.0.0.1/"] * 20 + ["http://127.0.0.1:8090/"] * 4:
        status, body = get(lb, url)
        assert status == 200, (url, body)
        kinds[body["server"]] += 1
    return kinds


@pytest.fixture(scope="module")
def released(instances):
    rc, out = deploy("-e", f"deploy_release={RELEASE}")
    assert rc == 0, out[-3000:]
    return out


def test_draining_the_last_serving_member_is_refused_before_any_change(instances):
    """app3 is the fastapi upstream alone: with the in-place path off, deploy.yml names
    it and the locations it would leave empty, and no host changes."""
    before = [current(instances[name]) for name in APPS]
    rc, out = deploy("-e", "deploy_release=refused", "-e", "deploy_in_place=false")
    assert rc != 0, out[-3000:]
    assert (
        "app3 is the last serving member of lb1: site fastapi, location / (upstream fastapi)" in out
    )
    assert "Nothing was changed." in out
    assert [current(instances[name]) for name in APPS] == before
    assert not instances["app1"].file("/srv/demo/releases/refused").exists


def test_every_app_host_runs_the_new_release_and_serves(instances, released):
    assert [current(instances[name]) for name in APPS] == [RELEASE] * len(APPS)
    assert set(served(instances)) == flask_kinds(instances) | {"gunicorn-asgi"}
    # Every host was put back: no server is left marked down.
    assert " down;" not in instances["lb1"].check_output("nginx -T 2>/dev/null")


def test_site_yml_afterwards_keeps_the_release_and_restarts_nothing(instances, released):
    pids = main_pids(instances)
    proc = run_playbook(ROOT / "site.yml", "--tags", "app", timeout=900)
    out = flat_output(proc)
    assert proc.returncode == 0, out[-3000:]
    changed = {n: re.search(rf"\b{n} : ok=\d+ changed=(\d+)", out) for n in APPS}
    assert {n: m and int(m[1]) for n, m in changed.items()} == dict.fromkeys(APPS, 0), out[-3000:]
    assert [current(instances[name]) for name in APPS] == [RELEASE] * len(APPS)
    assert main_pids(instances) == pids


def test_a_failing_release_is_rolled_back_and_stops_the_run(instances, released, tmp_path):
    # Today's source is broken: the app factory raises, so the new release never
    # answers its health check.
    broken = tmp_path / "demo_flask"
    shutil.copytree(ROOT / "apps/demo_flask", broken)
    module = broken / "webtier_demo_flask" / "__init__.py"
    module.write_text(
        module.read_text().replace(
            "def create_app() -> Flask:\n",
            'def create_app() -> Flask:\n    raise RuntimeError("a broken release")\n',
        )
    )
    rc, out = deploy("-e", "deploy_release=broken", "-e", f"python_app_src={broken}")
    assert rc != 0, out[-3000:]
    assert "Roll back to the release the host ran" in out
    # app1 (the first batch) runs the release it ran before, with that release's code;
    # the run stopped there: app2 and app3 never started the broken one.
    app1 = instances["app1"]
    assert [current(instances[name]) for name in APPS] == [RELEASE] * len(APPS)
    assert "raise RuntimeError" not in app1.check_output(
        f"cat /srv/demo/releases/{RELEASE}/src/webtier_demo_flask/__init__.py"
    )
    assert not instances["app2"].file("/srv/demo/releases/broken").exists
    assert set(served(instances)) == flask_kinds(instances) | {"gunicorn-asgi"}
    assert " down;" not in instances["lb1"].check_output("nginx -T 2>/dev/null")
