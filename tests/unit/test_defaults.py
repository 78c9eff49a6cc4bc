"""Every role on its documented defaults (tests/inventories/defaults): one host per tier,
given only what its role requires. Preflight passes it, and what the defaults cannot
agree on by themselves is a finding naming the variable, not a failure mid-converge.
(The engines render it byte for byte alike: tests/engines/test_parity.py.)"""

from __future__ import annotations

import shutil

import yaml

from webtier import ROOT
from webtier.checks import preflight
from webtier.model.inventory import load

DEFAULTS = ROOT / "tests/inventories/defaults"


def findings(inventory):
    loaded = load(inventory)
    return preflight.run(loaded.all_host_vars(), loaded.members)


def test_every_role_on_its_defaults_passes_preflight():
    loaded = load(DEFAULTS)
    groups = {"loadbalancers", "app_gunicorn", "app_uwsgi", "workers", "databases", "redis"}
    assert groups <= {g for g, hosts in loaded.members.items() if hosts}
    assert findings(DEFAULTS) == []


def test_what_the_defaults_cannot_agree_on_is_a_finding_naming_each_variable(tmp_path):
    """nginx's default worker_connections proxies more than one Gunicorn and one uWSGI
    host hold on their defaults: preflight says which variables to raise."""
    copy = tmp_path / "defaults"
    shutil.copytree(DEFAULTS, copy)
    nginx = copy / "group_vars/loadbalancers/nginx.yml"
    data = yaml.safe_load(nginx.read_text())
    del data["nginx_worker_connections"]
    nginx.write_text(yaml.safe_dump(data))
    named = {(f.host, f.variable) for f in findings(copy)}
    assert named == {
        ("app1", "gunicorn_backlog"),
        ("app2", "uwsgi_listen"),
        ("app1", "gunicorn_worker_connections"),
    }
