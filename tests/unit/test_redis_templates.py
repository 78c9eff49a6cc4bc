"""The redis templates (plain Jinja2, as pyinfra and Ansible render them) and run-time logic."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shlex
import sys

import pytest
import yaml

from webtier import ROOT
from webtier.files.redis import app_acls, redis_password_hashes
from webtier.files.render import render
from webtier.model import derive

ROLE = ROOT / "roles/redis"


def role_vars(**overrides):
    """The role's defaults and internal vars, with the values the role computes on a host."""
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    internal = yaml.safe_load((ROLE / "vars/main.yml").read_text())
    values = {**defaults, **internal}
    values.update(
        redis_announce_host="cache1",
        redis_admin_password="admin-pw",
        redis_app_users=[
            {"name": "demo", "password": "app-pw"},  # pragma: allowlist secret
            {"name": "notes", "password": "notes-pw", "prefix": "n/"},  # pragma: allowlist secret
            {
                "name": "exporter",
                "password": "exp-pw",  # pragma: allowlist secret
                "prefix": "",
                "commands": "+info +ping",
            },
        ],
        __redis_paths=internal["__redis_engines"]["redis"],
        __redis_bind_addresses=["127.0.0.1"],
        __redis_replicaof="",
        __redis_in_container=False,
    )
    values.update(overrides)
    values["__redis_nofile"] = derive.redis_nofile(values["redis_maxclients"])
    values["__redis_maxmemory"] = derive.redis_maxmemory(values["redis_maxmemory"], 1000)
    values["__redis_password_hashes"] = redis_password_hashes(
        {
            "admin": values["redis_admin_password"],
            "replication": values["redis_replication_password"],
            "sentinel": values["redis_sentinel_auth_password"],
        }
    )
    values["__redis_app_acls"] = app_acls(values["redis_app_users"], values["redis_app_commands"])
    return values


def directives(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines}


def test_cache_profile_has_no_persistence_and_evicts():
    conf = directives(render("etc/redis/redis.conf.j2", role_vars()))
    assert conf["save"] == '""'
    assert conf["appendonly"] == "no"
    assert conf["maxmemory-policy"] == "allkeys-lru"
    # 25% of 1000 MiB, in bytes.
    assert conf["maxmemory"] == str(250 * 1048576)


def test_store_profile_persists_and_never_evicts():
    text = render(
        "etc/redis/redis.conf.j2", role_vars(redis_profile="store", redis_maxmemory="2gb")
    )
    conf = directives(text)
    assert conf["appendonly"] == "yes"
    assert conf["appendfsync"] == "everysec"
    # One line per snapshot rule, as CONFIG REWRITE writes them.
    assert re.findall(r"^save (.*)$", text, re.MULTILINE) == ["3600 1", "300 100", "60 10000"]
    assert conf["maxmemory-policy"] == "noeviction"
    assert conf["maxmemory"] == "2gb"


def test_kernel_facing_settings_and_process_model():
    conf = directives(render("etc/redis/redis.conf.j2", role_vars(redis_tcp_backlog=1234)))
    assert conf["tcp-backlog"] == "1234"
    assert conf["supervised"] == "systemd"
    assert conf["daemonize"] == "no"
    assert conf["disable-thp"] == "yes"
    assert conf["aclfile"] == "/etc/redis/users.acl"
    assert conf["protected-mode"] == "yes"


def test_replica_points_at_its_primary_and_authenticates():
    values = role_vars(
        redis_replication_group="cache",
        redis_replication_password="repl-pw",
        __redis_replicaof="cache0 6379",
    )
    conf = directives(render("etc/redis/redis.conf.j2", values))
    assert conf["replicaof"] == "cache0 6379"
    assert conf["masteruser"] == '"replicator"'  # quoted, as CONFIG REWRITE writes it
    assert conf["replica-announce-ip"] == '"cache1"'
    primary = directives(render("etc/redis/redis.conf.j2", {**values, "__redis_replicaof": ""}))
    assert "replicaof" not in primary
    assert "masterauth" in primary, "a primary may become a replica after a failover"


def test_acl_file_disables_default_user_and_holds_no_plaintext():
    values = role_vars(
        redis_sentinel=True, redis_sentinel_auth_password="s-pw", redis_replication_group="g"
    )
    acl = render("etc/redis/users.acl.j2", values)
    lines = acl.splitlines()
    # Redis refuses an ACL file with anything but `user` lines (no comments).
    assert all(line.startswith("user ") for line in lines), lines
    assert lines[0].startswith("user default off")
    for password in ("admin-pw", "app-pw", "notes-pw", "exp-pw", "s-pw"):
        assert password not in acl
        assert "#" + hashlib.sha256(password.encode()).hexdigest() in acl
    users = {line.split()[1]: line.split(" ", 4)[4] for line in lines}
    # Each app its own keys and channels, never every key (~*) or channel (&*).
    # (and Celery's patterns under the prefix, named literally for PSUBSCRIBE)
    celery = "&demo:/0.celery.pidbox &demo:/0.celeryev/worker.* &demo:/0.celeryev/*"
    rules = "-@all +@all -@admin -@dangerous"
    assert users["demo"] == f"resetkeys resetchannels ~demo:* &demo:* {celery} {rules}"
    assert users["notes"].startswith("resetkeys resetchannels ~n/* &n/* &n//0.celery.pidbox ")
    # A tool that reads no key: no key, no channel, its own commands.
    assert users["exporter"] == "resetkeys resetchannels -@all +info +ping"


def test_an_unrestricted_app_user_reaches_every_key():
    values = role_vars(
        redis_app_users=[{"name": "legacy", "password": "p", "unrestricted": "old code"}]
    )
    acl = render("etc/redis/users.acl.j2", values)
    assert "resetkeys resetchannels ~* &* -@all +@all -@admin -@dangerous" in acl


def test_acl_file_without_auth_is_open_default_user():
    acl = render("etc/redis/users.acl.j2", role_vars(redis_auth=False))
    assert acl == "user default on nopass ~* &* +@all\n"


def test_service_dropin_gives_maxclients_its_descriptors():
    dropin = render(
        "etc/systemd/system/redis.service.d/webtier.conf.j2", role_vars(redis_maxclients=5000)
    )
    assert "LimitNOFILE=5032" in dropin
    assert "PrivateUsers" not in dropin
    in_container = render(
        "etc/systemd/system/redis.service.d/webtier.conf.j2", role_vars(__redis_in_container=True)
    )
    assert "PrivateUsers=false" in in_container


def load(name: str, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_runtime_module():
    # Ansible ships the collection's module_utils to the host under this name.
    load(
        "ansible_collections.webtier.stack.plugins.module_utils.webtier_redis",
        ROOT / "plugins/module_utils/webtier_redis.py",
    )
    return load("redis_runtime_config", ROOT / "plugins/modules/redis_runtime_config.py")


@pytest.fixture(scope="module")
def runtime():
    return load_runtime_module()


def test_changed_directives_are_found_with_their_new_value(runtime):
    before = 'maxmemory 100mb\nsave ""\ntcp-backlog 511\ndir /var/lib/redis\n'
    after = 'maxmemory 200mb\nsave ""\ntcp-backlog 1024\ndir "/var/lib/redis"\n'
    changed, reasons = runtime.changes(before, after)
    assert changed == {"maxmemory": ["200mb"], "tcp-backlog": ["1024"]}
    assert reasons == []


def test_lines_added_by_config_rewrite_are_left_alone(runtime):
    ours = "maxmemory 100mb\nreplicaof cache0 6379\n"
    rewritten = (
        ours + "# Generated by CONFIG REWRITE\nlatency-tracking-info-percentiles 50 99 99.9\n"
    )
    assert runtime.changes(rewritten, ours) == ({}, [])


def test_a_replica_that_became_primary_is_told_so(runtime):
    changed, _ = runtime.changes("replicaof cache0 6379\n", "maxmemory 1gb\n")
    assert changed["replicaof"] == ["no", "one"]


def test_load_time_only_directives_require_a_restart(runtime):
    _, reasons = runtime.changes("", "include /etc/redis/extra.conf\n")
    assert reasons == ["include: changed, and it can only be read at start"]


@pytest.mark.parametrize("password", ["a b#c/d@e", 'quote"back\\slash', "plain"])
def test_passwords_in_config_files_survive_their_quoting(password):
    """redis.conf and sentinel.conf split a line into words (quotes and backslash escapes,
    as shlex does, which is how the role's runtime-config module reads them): each
    password comes back whole, whatever it holds."""
    values = role_vars(
        redis_replication_group="g",
        redis_replication_password=password,
        redis_sentinel=True,
        redis_sentinel_password=password,
        redis_sentinel_auth_password=password,
        __redis_sentinel_seed_primary="cache0",
    )
    conf = render("etc/redis/redis.conf.j2", values).splitlines()
    [line] = [line for line in conf if line.startswith("masterauth ")]
    assert shlex.split(line) == ["masterauth", password]
    sentinel = render("etc/redis/sentinel.conf.j2", values).splitlines()
    [line] = [line for line in sentinel if line.startswith("requirepass ")]
    assert shlex.split(line) == ["requirepass", password]
    [line] = [line for line in sentinel if line.startswith("sentinel auth-pass ")]
    assert shlex.split(line)[-1] == password


def test_tls_closes_the_plaintext_port_for_clients_replicas_and_sentinel():
    values = role_vars(redis_tls=True, redis_replication_group="g", __redis_replicaof="cache0 6379")
    conf = directives(render("etc/redis/redis.conf.j2", values))
    assert (conf["port"], conf["tls-port"]) == ("0", "6379")
    assert conf["tls-ca-cert-file"] == "/etc/redis/tls/ca.crt"
    assert conf["tls-replication"] == "yes"
    assert conf["tls-auth-clients"] == "no"  # clients authenticate with their ACL password
    sentinel = directives(
        render(
            "etc/redis/sentinel.conf.j2",
            {**values, "__redis_sentinel_seed_primary": "cache0", "redis_sentinel_password": "p"},
        )
    )
    assert (sentinel["port"], sentinel["tls-port"]) == ("0", "26379")
    assert sentinel["tls-replication"] == "yes"
    plain = directives(render("etc/redis/redis.conf.j2", role_vars()))
    assert plain["port"] == "6379"
    assert "tls-port" not in plain


def test_snapshot_rules_one_per_line_are_set_together(runtime):
    """The template writes one save line per rule, as CONFIG REWRITE does; a change
    applies them all in one CONFIG SET, with no restart."""
    changed, reasons = runtime.changes("save 3600 1\n", "save 900 1\nsave 60 10000\n")
    assert changed == {"save": ["900 1 60 10000"]}
    assert reasons == []


def test_a_file_sentinel_rewrote_reads_as_the_one_the_role_renders(runtime):
    """redis_config_file compares what the server reads: Sentinel's CONFIG REWRITE
    quotes strings and leaves an empty line for a removed replicaof; that is no change."""
    parse = sys.modules[
        "ansible_collections.webtier.stack.plugins.module_utils.webtier_redis"
    ].parse
    ours = (
        'masteruser "replicator"\nreplica-announce-ip "redis1"\nsave 3600 1\nsave 60 10000\n'
        "# Generated by CONFIG REWRITE\n"
    )
    rewritten = (
        "masteruser replicator\nreplica-announce-ip redis1\nsave 3600 1\nsave 60 10000\n"
        "# Generated by CONFIG REWRITE\n\n"
    )
    assert parse(ours) == parse(rewritten)
    # pyinfra compares the two by this digest, computed on the host for the live file.
    digest = sys.modules[
        "ansible_collections.webtier.stack.plugins.module_utils.webtier_redis"
    ].directives_digest
    assert digest(ours) == digest(rewritten)
    assert parse(ours) != parse(rewritten + "replicaof redis3 6379\n")
