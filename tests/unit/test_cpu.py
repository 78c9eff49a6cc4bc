"""CPU per request and the closed-loop model built on it (webtier.model.cpu)."""

from __future__ import annotations

import pytest

from webtier.model import cpu
from webtier.ops import cpuprobe


def test_cgroup_cpu_is_read_from_v1_and_v2_accounting(tmp_path):
    v1 = tmp_path / "v1"
    (v1 / "cpuacct/docker/abc").mkdir(parents=True)
    (v1 / "cpuacct/docker/abc/cpuacct.usage").write_text("123456789\n")
    assert cpuprobe.cgroup_ns("abc", v1) == 123456789
    v2 = tmp_path / "v2"
    (v2 / "system.slice/docker-abc.scope").mkdir(parents=True)
    (v2 / "system.slice/docker-abc.scope/cpu.stat").write_text(
        "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"
    )
    assert cpuprobe.cgroup_ns("abc", v2) == 2_500_000
    with pytest.raises(FileNotFoundError, match="no cgroup CPU accounting for container zzz"):
        cpuprobe.cgroup_ns("zzz", v2)


def test_machine_busy_time_leaves_out_idle_and_iowait(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 900 30 0 10 0 0 0\ncpu0 1 2 3\n")
    hz = __import__("os").sysconf("SC_CLK_TCK")
    assert cpuprobe.machine_busy_ns(stat) == 160 * 1_000_000_000 // hz


def test_systemd_cpu_sums_the_units():
    asked = []

    def run(argv):
        asked.append(argv)
        return "1000\n[not set]\n2500\n"

    assert cpuprobe.systemd_ns(run, ["nginx.service", "redis-*.service"]) == 3500
    assert asked[0][:4] == ["systemctl", "show", "--property=CPUUsageNSec", "--value"]


def test_the_probe_gives_cpu_per_request_per_host_and_what_no_host_accounts_for():
    counters = {"lb1": 0, "app1": 0, "machine": 0}
    probe = cpuprobe.CpuProbe(
        {h: (lambda h=h: counters[h]) for h in ("lb1", "app1")},
        machine=lambda: counters["machine"],
    )
    probe.start()
    counters.update(lb1=100_000_000, app1=300_000_000, machine=500_000_000)
    result = probe.stop(requests=1000)
    # 0.1 s and 0.3 s over 1,000 requests; the machine was busy 0.5 s.
    assert result["hosts"] == {"lb1": 100.0, "app1": 300.0, "other": 100.0}
    assert result["machine_us"] == 500.0
    assert result["total_us"] == 500.0


def test_one_connection_waits_for_every_cpu_and_the_delay():
    stations = [cpu.Pool("a", 1, 0.001), cpu.Pool("b", 1, 0.002)]
    at = cpu.predict([1], stations, delay_s=0.0005)
    assert at[1]["mean_ms"] == pytest.approx(3.5)
    assert at[1]["rps"] == pytest.approx(1 / 0.0035, rel=1e-3)


def test_mean_value_analysis_by_hand_for_two_connections():
    # One single-core pool (D = 1 ms) and a 1 ms delay. n=1: R = 1 ms + 1 ms, X = 500/s,
    # the pool holds 0.5 requests. n=2: the pool's residence is 1 ms x 1.5, so
    # R = 2.5 ms and X = 2 / 2.5 ms = 800/s.
    at = cpu.predict([1, 2], [cpu.Pool("a", 1, 0.001)], delay_s=0.001)
    assert at[1] == {"rps": 500.0, "mean_ms": 2.0}
    assert at[2] == {"rps": 800.0, "mean_ms": 2.5}


def test_throughput_levels_at_the_busiest_pool_and_latency_follows_littles_law():
    stations = [cpu.Pool("box", 2, 0.0005)]
    at = cpu.predict([64, 8192], stations, delay_s=0.0008)
    ceiling, pool = cpu.ceiling(stations)
    assert (ceiling, pool) == (4000.0, "box")
    assert at[8192]["rps"] == pytest.approx(4000, rel=1e-3)
    for n, p in at.items():
        assert p["rps"] * p["mean_ms"] / 1000 == pytest.approx(n, rel=1e-3)


def test_hosts_sharing_a_machine_form_one_pool_with_the_load_generator():
    hostvars = {
        "lb1": {"webtier_cpu_pool": "sandbox"},
        "app1": {"webtier_cpu_pool": "sandbox"},
    }
    demand = {"lb1": 60.0, "app1": 250.0, "loadgen": 25.0, "other": 40.0}
    [pool] = cpu.pools(demand, hostvars)
    assert (pool.name, pool.cores, pool.hosts) == (
        "sandbox",
        2,
        ("lb1", "app1", "loadgen", "other"),
    )
    assert pool.demand_s == pytest.approx(375e-6)


def test_separate_machines_are_pools_of_their_own_with_their_cores():
    hostvars = {
        "lb1": {"webtier_cpus": 4},
        "app1": {"webtier_cpus": 8},
        "app2": {"webtier_cpus": 8},
    }
    demand = {"lb1": 60.0, "app1": 250.0, "app2": 250.0, "loadgen": 25.0}
    by_name = {p.name: p for p in cpu.pools(demand, hostvars)}
    assert {n: (p.cores, round(p.demand_s * 1e6)) for n, p in by_name.items()} == {
        "lb1": (4, 60),
        "app1": (8, 250),
        "app2": (8, 250),
        "loadgen": (2, 25),
    }
    # An app host is the busiest pool: 8 cores / 250 us (32,000/s; the LB allows 66,667).
    assert cpu.ceiling(list(by_name.values()))[1] == "app1"


def test_a_calibration_keeps_the_hosts_that_spent_cpu_and_the_delay():
    measured = {"hosts": {"lb1": 60.0, "redis1": 0.0, "app1": 250.0}}
    entry = cpu.calibration(measured, unloaded_ms=0.8, connections=256, when="2026-12-02")
    assert entry == {
        "hosts_us": {"app1": 250.0, "lb1": 60.0},
        "delay_us": 490.0,
        "calibrated": "2026-12-02, 256 connections",
    }


def test_a_level_that_answered_nothing_has_no_cpu_per_request():
    probe = cpuprobe.CpuProbe({"lb1": lambda: 5_000_000_000}, machine=lambda: 9_000_000_000)
    probe.start()
    assert probe.stop(requests=0) == {"hosts": {}, "total_us": None}
