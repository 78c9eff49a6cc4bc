"""gixy-ng over the nginx trees the inventory renders: every environment's is clean, and
a finding stops preflight (both engines call webtier.checks.preflight.run) and the
render command's scan, with gixy's explanation."""

from __future__ import annotations

import dataclasses

import pytest

from webtier import ROOT
from webtier.checks import nginxscan, preflight
from webtier.files import configs
from webtier.model.inventory import load

TRAVERSAL = "    location /files {\n        alias /srv/files/;\n    }\n"


@pytest.mark.parametrize("env", ["sandbox", "staging", "production"])
def test_every_environments_nginx_trees_pass_gixy(env, tmp_path):
    inventory = load(ROOT / "inventory" / env)
    assert nginxscan.check(inventory.all_host_vars(), inventory.members) == []
    configs.render(inventory, tmp_path)
    trees = list(tmp_path.glob("*/etc/nginx/nginx.conf"))
    assert len(trees) == len(inventory.members["loadbalancers"])
    assert nginxscan.check_render(tmp_path) == []


def planted(files):
    """The site files with an alias traversal added (a location without its slash)."""
    return [
        dataclasses.replace(
            f, content=f.content.replace("    location ", TRAVERSAL + "    location ", 1)
        )
        if "/sites/" in f.dest
        else f
        for f in files
    ]


def test_a_gixy_finding_stops_preflight_with_its_explanation(monkeypatch):
    inventory = load(ROOT / "inventory" / "staging")
    rendered = configs.rendered
    monkeypatch.setattr(configs, "rendered", lambda *a: planted(rendered(*a)))
    found = preflight.run(inventory.all_host_vars(), inventory.members)
    assert found
    assert {f.host for f in found} == set(inventory.members["loadbalancers"])
    text = str(found[0])
    assert "gixy's alias_traversal check (HIGH): Path traversal via misconfigured alias" in text
    assert "/etc/nginx/webtier/sites/" in text
    assert "Fix: see https://" in text


def test_the_render_commands_scan_finds_what_was_written(tmp_path):
    configs.render(load(ROOT / "inventory" / "sandbox"), tmp_path)
    site = next(tmp_path.glob("lb1/etc/nginx/webtier/sites/*.conf"))
    site.write_text(site.read_text().replace("    location ", TRAVERSAL + "    location ", 1))
    assert nginxscan.main([str(tmp_path)]) == 1
    (found,) = nginxscan.check_render(tmp_path)
    assert found.host == "lb1"
    assert "alias_traversal" in found.limit


def test_each_suppression_says_why():
    assert all(len(reason) > 40 for reason in nginxscan.SKIPPED.values())
