"""What a user relies on after the redis role converged (store profile, ACLs)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import VARS, cli, engine, main_pid
from scenario import nofile_limits


def test_app_user_can_ping_over_tcp(host):
    reply = cli(host, "PING", user="app", tcp=True)
    assert reply.stdout.strip() == "PONG", reply.stdout + reply.stderr


def test_unauthenticated_commands_get_noauth(host):
    reply = cli(host, "GET", "anything", user=None, tcp=True)
    assert "NOAUTH" in reply.stdout + reply.stderr


@pytest.mark.parametrize("command", [("CONFIG", "GET", "maxmemory"), ("FLUSHALL",), ("KEYS", "*")])
def test_app_user_cannot_run_admin_commands(host, command):
    reply = cli(host, *command, user="app", tcp=True)
    assert "NOPERM" in reply.stdout + reply.stderr, command


def test_app_user_reads_and_writes(host):
    assert cli(host, "SET", "webtier:test", "42", user="app").stdout.strip() == "OK"
    assert cli(host, "INCR", "webtier:test", user="app").stdout.strip() == "43"


def test_listen_backlog_is_the_configured_one(host):
    # ss shows a listener's effective accept-queue limit in Send-Q.
    line = host.check_output("ss -ltnH 'sport = :6379'")
    send_q = int(line.split()[2])
    assert send_q == VARS["redis_tcp_backlog"], line


def test_service_gets_the_descriptors_maxclients_needs(host):
    soft, hard = nofile_limits(host.file(f"/proc/{main_pid(host)}/limits").content_string)
    assert soft == hard == VARS["redis_maxclients"] + 32
    # Redis lowers maxclients by itself when the limit is too small: it did not.
    assert cli(host, "CONFIG", "GET", "maxclients").stdout.split()[-1] == str(
        VARS["redis_maxclients"]
    )


def test_no_warning_in_the_log(host):
    """The start with the role's configuration logged no warning (backlog, overcommit, THP)."""
    log = host.file(engine(host)["log"]).content_string
    last_start = log.split("oO0OoO0OoO0Oo")[-2:]
    assert len(last_start) == 2, "no start in the log"
    lines = last_start[1].splitlines()
    assert any("Ready to accept connections" in line for line in lines)
    assert [line for line in lines if re.search("warning", line, re.IGNORECASE)] == []


def test_store_profile_keeps_keys_across_a_restart(host):
    assert cli(host, "SET", "webtier:durable", "kept", user="app").stdout.strip() == "OK"
    before = main_pid(host)
    host.check_output(f"systemctl restart {engine(host)['service']}")
    host.check_output(f"timeout 20 sh -c 'until [ -S {engine(host)['sock']} ]; do sleep 0.2; done'")
    assert main_pid(host) != before
    assert cli(host, "GET", "webtier:durable", user="app").stdout.strip() == "kept"
    assert cli(host, "CONFIG", "GET", "appendonly").stdout.split()[-1] == "yes"


RUNTIME_CHANGE = json.dumps({"redis_maxmemory": "300mb", "redis_profile": "cache"})


def test_maxmemory_change_applies_without_restart(host, converge_with):
    name = host.backend.get_hostname()
    change = converge_with(RUNTIME_CHANGE)
    assert change.result.returncode == 0, change.output[-3000:]
    assert change.after[name]["maxmemory"] == str(300 * 1024 * 1024)
    assert change.after[name]["pid"] == change.before[name]["pid"], (
        "restarted for a run-time setting"
    )
    assert change.restored.returncode == 0
    assert change.final[name]["maxmemory"] == str(256 * 1024 * 1024)
    assert change.final[name]["pid"] == change.before[name]["pid"]


def test_profile_switch_applies_without_restart(host, converge_with):
    name = host.backend.get_hostname()
    change = converge_with(RUNTIME_CHANGE)
    assert re.search(
        r"applied without restart: [a-z, -]*appendonly[a-z, -]*; restart: not needed", change.output
    )
    assert change.after[name]["appendonly"] == "no"
    assert change.after[name]["maxmemory-policy"] == "allkeys-lru"
    assert change.after[name]["pid"] == change.before[name]["pid"]
    assert change.final[name]["appendonly"] == "yes"
    assert change.final[name]["maxmemory-policy"] == "noeviction"
    assert change.final[name]["pid"] == change.before[name]["pid"]


def test_backlog_change_restarts_and_takes_effect(host, converge_with):
    """tcp-backlog is read only at start: the role restarts for it, and only for such settings."""
    name = host.backend.get_hostname()
    change = converge_with("redis_tcp_backlog=2500")
    assert change.result.returncode == 0, change.output[-3000:]
    assert change.after[name]["listen_backlog"] == 2500
    assert change.after[name]["pid"] != change.before[name]["pid"]
    assert "tcp-backlog" in change.output
    assert change.final[name]["listen_backlog"] == VARS["redis_tcp_backlog"]


def test_invalid_setting_is_refused_and_the_live_server_untouched(host, converge_with):
    name = host.backend.get_hostname()
    change = converge_with(json.dumps({"redis_extra_config": {"maxmemory-policy": "sometimes"}}))
    assert change.result.returncode != 0
    # The server binary's own message, naming the bad line.
    assert "maxmemory-policy sometimes" in change.output, change.output[-3000:]
    assert change.after[name]["conf_sha256"] == change.before[name]["conf_sha256"]
    assert change.after[name]["pid"] == change.before[name]["pid"]
    assert cli(host, "PING", user="app").stdout.strip() == "PONG"
