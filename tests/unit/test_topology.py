"""What the apps are told about their Redis, whom the app servers trust for forwarded
headers, and how nginx spells HTTP/2: derived from the inventory, for both engines."""

from __future__ import annotations

import re

import pytest
import yaml

from webtier import ROOT
from webtier.files import configs, firewall, nginx
from webtier.files.app import app_env, app_redis_env
from webtier.files.render import render
from webtier.model.inventory import load
from webtier.model.topology import HOST_ROLES, roles_of

GROUPS = {"redis": ["r1", "r2", "r3"], "loadbalancers": ["lb1", "lb2"]}
# Assembled here: the secret scan refuses literal credentials in the repository.
APP_PW, SENTINEL_PW = "/".join(["a", "b#c@d e"]), "-".join(["sentinel", "pw"])


def redis_hosts(**common) -> dict:
    users = [{"name": "demo", "password": APP_PW}, {"name": "notes", "password": "n"}]
    base = {"redis_app_users": users, "redis_sentinel_password": SENTINEL_PW} | common
    return {
        "r1": {"inventory_hostname": "r1", "ansible_host": "10.0.0.11", **base},
        "r2": {"inventory_hostname": "r2", "redis_replication_role": "primary", **base},
        "r3": {"inventory_hostname": "r3", "redis_announce_host": "r3.internal", **base},
    }


def test_a_sentinel_set_gives_the_sentinels_and_both_passwords():
    env, secret = app_redis_env("redis", GROUPS, redis_hosts(redis_sentinel=True), "demo")
    assert env == {
        # By inventory name (not ansible_host: how the controller reaches them), or
        # the name the inventory says the host announces.
        "REDIS_SENTINELS": "r1:26379,r2:26379,r3.internal:26379",
        "REDIS_SENTINEL_SERVICE": "webtier",
        "REDIS_DB": "0",
        "REDIS_USERNAME": "demo",
        "REDIS_KEY_PREFIX": "demo:",
    }
    assert secret == {"REDIS_PASSWORD": APP_PW, "REDIS_SENTINEL_PASSWORD": SENTINEL_PW}


def test_without_sentinel_the_url_names_the_primary_and_carries_no_password():
    env, secret = app_redis_env("redis", GROUPS, redis_hosts(redis_port=6380), "demo")
    assert env == {"REDIS_URL": "redis://demo@r2:6380/0", "REDIS_KEY_PREFIX": "demo:"}
    assert secret == {"REDIS_PASSWORD": APP_PW}


def test_each_app_gets_its_own_user_and_an_unknown_one_is_named():
    env, secret = app_redis_env("redis", GROUPS, redis_hosts(), "notes")
    assert env == {"REDIS_URL": "redis://notes@r2:6379/0", "REDIS_KEY_PREFIX": "notes:"}
    assert secret == {"REDIS_PASSWORD": "n"}
    with pytest.raises(ValueError, match=r"python_app_redis_user=shop: r1 .* \(demo, notes\)"):
        app_redis_env("redis", GROUPS, redis_hosts(), "shop")


def test_tls_and_no_auth_change_the_url():
    env, secret = app_redis_env(
        "redis", {"redis": ["r1"]}, {"r1": {"redis_tls": True, "redis_auth": False}}
    )
    assert env == {"REDIS_URL": "rediss://r1:6379/0"}
    assert secret == {}


def test_the_inventory_wins_over_what_is_derived():
    v = {
        "python_app_name": "demo",
        "python_app_redis_group": "redis",
        "python_app_env": {"REDIS_DB": "3", "OTHER": "x"},
        "python_app_secret_env": {},
    }
    out = app_env(v, GROUPS, redis_hosts(redis_sentinel=True))
    assert out["__python_app_env"]["REDIS_DB"] == "3"
    assert out["__python_app_env"]["OTHER"] == "x"
    assert out["__python_app_secret_env"]["REDIS_SENTINEL_PASSWORD"] == SENTINEL_PW


def test_no_group_means_no_redis_and_a_missing_group_is_named():
    assert app_redis_env("", GROUPS, {}) == ({}, {})
    with pytest.raises(ValueError, match="python_app_redis_group=cache"):
        app_redis_env("cache", GROUPS, {})


@pytest.mark.parametrize("env", ["sandbox", "staging", "production"])
def test_every_app_host_of_every_environment_reaches_its_redis_through_the_model(env):
    inventory = load(ROOT / "inventory" / env)
    hostvars = inventory.all_host_vars()
    for host in inventory.members["appservers"]:
        v = configs.variables(inventory, host, roles_of(host, inventory.members))
        out = app_env(v, inventory.members, hostvars)
        sentinel = "REDIS_SENTINELS" in out["__python_app_env"]
        assert sentinel or "REDIS_URL" in out["__python_app_env"], (env, host)
        assert out["__python_app_secret_env"]["REDIS_PASSWORD"], (env, host)
        # its own user, under its own prefix
        name = out["__python_app_env"].get("REDIS_USERNAME") or v["python_app_name"]
        assert name == v["python_app_name"], (env, host)
        assert out["__python_app_env"]["REDIS_KEY_PREFIX"] == f"{name}:", (env, host)
        assert env == "staging" or sentinel, (env, host)  # replicated under Sentinel


def test_auto_trusts_the_host_and_the_load_balancers_only():
    resolved = {"lb1": ["10.0.0.2"], "lb2": ["10.0.0.3", "10.0.0.2"]}
    assert firewall.trusted_proxies("auto", GROUPS, resolved) == [
        "127.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
    ]
    assert firewall.trusted_proxies(["10.1.0.0/16"], GROUPS, resolved) == ["10.1.0.0/16"]
    # A render reaches no host: the names stay.
    assert firewall.trusted_proxies("auto", GROUPS) == ["127.0.0.1", "lb1", "lb2"]


def test_a_load_balancer_the_host_cannot_resolve_is_refused():
    with pytest.raises(ValueError, match="lb2 cannot be resolved"):
        firewall.trusted_proxies("auto", GROUPS, {"lb1": ["10.0.0.2"], "lb2": []})


SITE = {
    "nginx_upstreams": [],
    "nginx_sites": [
        {
            "name": "s",
            "tls": {"certificate": "/c", "certificate_key": "/k"},
            "locations": [{"path": "/", "return": "204"}],
        }
    ],
    "nginx_listen_backlog": 511,
    "nginx_reuseport": False,
    "nginx_worker_connections": 1024,
    "nginx_worker_rlimit_nofile": "auto",
}


@pytest.mark.parametrize(
    ("release", "listen", "directive"),
    [
        ("bookworm", "listen 443 ssl http2 backlog", False),
        ("trixie", "listen 443 ssl backlog", True),
    ],
)
def test_http2_is_spelled_as_the_releases_nginx_wants(release, listen, directive):
    values = {
        **configs.role_defaults("nginx"),
        **nginx.plan(SITE, {}, {}, release),
    }
    values["site"] = values["nginx_sites_resolved"][0]
    text = render("etc/nginx/webtier/sites/site.conf.j2", values)
    assert listen in text
    assert ("http2 on;" in text) == directive


def _site_plays() -> list[dict]:
    """The plays of site.yml, in order (each import_playbook of playbooks/site.yml)."""
    plays = []
    for entry in yaml.safe_load((ROOT / "playbooks/site.yml").read_text()):
        plays += yaml.safe_load(
            (ROOT / "playbooks" / entry["ansible.builtin.import_playbook"]).read_text()
        )
    return plays


def _roles_by_group(play: dict) -> list[tuple[str, str]]:
    """(group, role) for each role a play runs: its `roles:`, or include_role tasks whose
    `when` names the group ("'app_gunicorn' in group_names")."""
    found = [(play["hosts"], r["role"]) for r in play.get("roles", [])]
    for task in play.get("tasks", []):
        include = task.get("ansible.builtin.include_role")
        if include:
            group = re.fullmatch(r"'(\w+)' in group_names", task["when"])[1]
            found.append((group, include["name"]))
    return [(group, role.removeprefix("webtier.stack.")) for group, role in found]


def test_site_yml_runs_on_each_group_the_roles_the_model_sizes_it_for_in_order():
    """topology.HOST_ROLES is what the model, preflight and the pyinfra engine take a
    group to run; site.yml's plays must run exactly that, in the same order (python_app
    comes in through the server roles, which include it)."""
    ran = [pair for play in _site_plays() for pair in _roles_by_group(play)]
    expected = [
        (group, role)
        for group, roles in HOST_ROLES.items()
        for role in roles
        if role != "python_app"
    ]
    assert ran[0] == ("localhost", "preflight")  # the whole inventory, on the controller
    assert ran[1:] == expected
    for group, roles in HOST_ROLES.items():
        if "python_app" in roles:
            (server,) = [r for r in roles if r != "python_app"]
            tasks = "".join(
                p.read_text() for p in (ROOT / "roles" / server / "tasks").glob("*.yml")
            )
            assert "name: webtier.stack.python_app" in tasks, (group, server)
