"""The kernel_tuning templates, rendered with plain Jinja2 (as pyinfra and Ansible do)."""

from __future__ import annotations

import importlib.util

import jinja2
import pytest

from webtier import ROOT, TEMPLATES
from webtier.files.kernel import kernel_host
from webtier.files.render import environment, render

VARS = {
    "kernel_tuning_somaxconn": 4096,
    "kernel_tuning_tcp_max_syn_backlog": 8192,
    "kernel_tuning_netdev_max_backlog": 16384,
    "kernel_tuning_ip_local_port_range": {"low": 1024, "high": 65000},
    "kernel_tuning_tcp_fin_timeout": 15,
    "kernel_tuning_tcp_syncookies": True,
    "kernel_tuning_file_max": 2097152,
    "kernel_tuning_nr_open": 1048576,
    "kernel_tuning_dependent_sysctl": {},
    "kernel_tuning_nofile_effective": 20000,
}


def load_sysctl_module():
    path = ROOT / "plugins/modules/kernel_tuning_sysctl.py"
    spec = importlib.util.spec_from_file_location("kernel_tuning_sysctl", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_template_compiles_with_plain_jinja2():
    """An Ansible-only filter or test fails here: plain Jinja2 does not know it."""
    env = environment()
    names = [p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.j2")]
    assert names
    for name in names:
        env.get_template(name)


def test_sysctl_dropin_sets_every_key():
    out = render("etc/sysctl.d/webtier.conf.j2", VARS)
    assert out.startswith("# Managed by webtier")
    assert load_sysctl_module().parse(out) == {
        "net.core.somaxconn": "4096",
        "net.ipv4.tcp_max_syn_backlog": "8192",
        "net.ipv4.ip_local_port_range": "1024 65000",
        "net.ipv4.tcp_fin_timeout": "15",
        "net.ipv4.tcp_syncookies": "1",
        "net.core.netdev_max_backlog": "16384",
        "fs.file-max": "2097152",
        "fs.nr_open": "1048576",
    }
    assert "vm.overcommit_memory" not in out, "only when another role asks for it"
    assert "tcp_timestamps" not in out


def test_dependent_sysctls_are_appended_sorted():
    extra = {"vm.overcommit_memory": 1, "net.ipv4.tcp_tw_reuse": 1}
    out = render("etc/sysctl.d/webtier.conf.j2", {**VARS, "kernel_tuning_dependent_sysctl": extra})
    lines = out.splitlines()
    assert lines[-2:] == ["net.ipv4.tcp_tw_reuse = 1", "vm.overcommit_memory = 1"]


def test_nofile_templates_use_the_effective_limit():
    manager = render("etc/systemd/system.conf.d/webtier-limits.conf.j2", VARS)
    assert "[Manager]\nDefaultLimitNOFILE=20000\n" in manager
    pam = render("etc/security/limits.d/webtier.conf.j2", VARS)
    rows = [line.split() for line in pam.splitlines() if line and not line.startswith("#")]
    assert rows == [
        [who, kind, "nofile", "20000"] for who in ("*", "root") for kind in ("soft", "hard")
    ]


def test_a_missing_variable_fails_instead_of_rendering_empty():
    incomplete = {k: v for k, v in VARS.items() if k != "kernel_tuning_somaxconn"}
    with pytest.raises(jinja2.UndefinedError, match="kernel_tuning_somaxconn"):
        render("etc/sysctl.d/webtier.conf.j2", incomplete)


def test_the_apply_module_reads_what_the_template_writes():
    parse = load_sysctl_module().parse
    assert parse(render("etc/sysctl.d/webtier.conf.j2", VARS))["net.ipv4.ip_local_port_range"] == (
        "1024 65000"
    )
    assert parse("; comment\n-net.core.somaxconn=  128 \n") == {"net.core.somaxconn": "128"}
    with pytest.raises(ValueError, match="line 2"):
        parse("a = 1\nnot a setting\n")


@pytest.mark.parametrize(
    ("kind", "probe", "expected"),
    [
        # a container whose engine gives PID 1 a hard limit of 20000: the cap
        ("auto", "docker\n20000\n", (True, 20000, 20000)),
        # a machine: PID 1's limit is no cap, fs.nr_open is
        ("auto", "none\n524288\n", (False, 524288, 65535)),
        ("auto", "none\nunlimited\n", (False, None, 65535)),
        # the inventory says what the host is, whatever the probe found
        ("machine", "docker\n20000\n", (False, 20000, 65535)),
        ("container", "none\n20000\n", (True, 20000, 20000)),
    ],
)
def test_what_the_host_kind_probe_printed_decides_the_nofile_limit(kind, probe, expected):
    host = kernel_host(kind, probe, 65535, 1048576)
    assert (host["in_container"], host["pid1_nofile_hard"], host["nofile_effective"]) == expected
