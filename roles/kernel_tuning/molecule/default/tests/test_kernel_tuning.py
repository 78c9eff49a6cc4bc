"""What a user relies on after the kernel_tuning role ran in a container."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (
    DROPIN,
    VARS,
    expected_nofile,
    expected_sysctl,
    host_snapshot,
    nofile_limits,
)


def live(host, key: str) -> str:
    return " ".join(host.check_output(f"sysctl -n {key}").split())


def test_namespace_keys_are_live_in_the_container(host):
    netns, _ = expected_sysctl()
    for key, want in netns.items():
        assert live(host, key) == want, key


def test_dropin_holds_every_key(host):
    dropin = host.file(DROPIN)
    assert dropin.is_file
    assert dropin.user == "root"
    assert dropin.mode == 0o644
    lines = {line.strip() for line in dropin.content_string.splitlines()}
    netns, global_ = expected_sysctl()
    for key, value in {**netns, **global_}.items():
        assert f"{key} = {value}" in lines, key


def test_global_keys_left_to_the_host(host):
    """Written to the drop-in but not applied: the host's values are what they were."""
    _, global_ = expected_sysctl()
    before = host_snapshot()
    for key, asked in global_.items():
        assert before[key] != asked, f"pick a {key} different from the host's own ({asked})"
        now = " ".join(Path("/proc/sys", *key.split(".")).read_text().split())
        assert now == before[key], f"{key} changed on the host: {before[key]} -> {now}"
        # Inside the container the global keys that are visible read the host's value.
        if host.file(f"/proc/sys/{key.replace('.', '/')}").exists:
            assert live(host, key) == before[key], key


def test_a_service_started_after_the_change_gets_the_nofile_limit(host):
    unit = "kernel-tuning-nofile-probe"
    host.run(f"systemctl stop {unit}")
    host.check_output(f"systemd-run --unit={unit} --collect sleep 120")
    try:
        pid = host.check_output(f"systemctl show -p MainPID --value {unit}")
        assert int(pid) > 0
        soft, hard = nofile_limits(host.file(f"/proc/{pid}/limits").content_string)
    finally:
        host.run(f"systemctl stop {unit}")
    want = expected_nofile(host)
    assert want > 1024, "the probe would not tell the drop-in from systemd's default"
    assert (soft, hard) == (want, want)
    manager = host.file("/etc/systemd/system.conf.d/60-webtier-limits.conf")
    assert f"DefaultLimitNOFILE={want}" in manager.content_string


def test_login_sessions_get_the_nofile_limit(host):
    """pam_limits (su has it in its session stack) applies limits.d to a login."""
    out = host.check_output("su -s /bin/sh -c 'ulimit -Sn; ulimit -Hn' nobody")
    assert out.split() == [str(expected_nofile(host))] * 2


def test_published_fact_reports_effective_values(run_playbook, tmp_path):
    result = run_playbook("publish.yml", env={"KERNEL_TUNING_EXPORT_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    for path in sorted(tmp_path.glob("*.json")):
        fact = json.loads(path.read_text())
        assert fact["in_container"] is True
        assert fact["somaxconn"] == VARS["kernel_tuning_somaxconn"]
        assert fact["tcp_max_syn_backlog"] == VARS["kernel_tuning_tcp_max_syn_backlog"]
        port = VARS["kernel_tuning_ip_local_port_range"]
        assert fact["ip_local_port_range"] == [port["low"], port["high"]]
        assert fact["nofile"] == fact["nofile_hard"] > 1024
    assert len(list(tmp_path.glob("*.json"))) == 2, "one export per platform"
