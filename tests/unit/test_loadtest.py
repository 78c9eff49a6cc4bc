"""The load test's report: Little's law, the model's estimate, the plot, the comparison.

wrk itself is exercised by test_wrk.py against a real server; here a fake runner
returns what a closed-loop server with a fixed service rate would give, so every
figure of the report can be checked by hand.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from webtier.model import capacity
from webtier.ops import loadtest

GROUPS = {"all": ["lb1", "app1"], "loadbalancers": ["lb1"], "app_gunicorn": ["app1"]}


def fake_runner(rate: float, errors_above: int | None = None):
    """A server doing ``rate`` requests/s: mean latency = connections / rate (Little)."""

    def run(url, connections, seconds, *, target=(), timeout=30):
        del url, target, timeout
        requests = int(rate * seconds)
        mean_us = connections / rate * 1e6
        failed = connections // 2 if errors_above and connections > errors_above else 0
        return {
            "requests": requests,
            "seconds": float(seconds),
            "rps": float(rate),
            "latency_us": {
                "mean": mean_us,
                "p50": mean_us,
                "p90": mean_us * 1.5,
                "p99": mean_us * 2,
                "max": mean_us * 3,
            },
            "errors": {"connect": 0, "read": failed, "write": 0, "status": 0, "timeout": 0},
            "socket_errors": failed,
            "non_2xx_3xx": 0,
        }

    return run


def model():
    return capacity.model(
        {
            "lb1": {"nginx_worker_connections": 4096},
            "app1": {"gunicorn_workers": 3, "gunicorn_threads": 4},
        },
        GROUPS,
    )


def measure(rate=1000.0, errors_above=None, **kwargs):
    return loadtest.run(
        "http://lb1/",
        levels=[64, 256, 8192],
        seconds=1,
        hold_seconds=3,
        model=model(),
        runner=fake_runner(rate, errors_above),
        log=lambda _: None,
        **kwargs,
    )


def test_littles_law_holds_for_a_closed_loop():
    data = measure()
    for p in data["sweep"]:
        assert p["littles_law"]["ratio"] == pytest.approx(1.0)
        assert p["littles_law"]["within_10pct"]


def test_the_last_level_is_held_longer():
    assert [p["seconds"] for p in measure()["sweep"]] == [1, 1, 3]


def test_model_estimate_is_concurrency_over_unloaded_latency():
    data = measure()
    # Unloaded: 1 connection at 1000/s = 1 ms. The stack does 12 at once (3 x 4 threads).
    assert data["unloaded"]["latency_ms"]["mean"] == 1.0
    assert [p["notes_qps"] for p in data["sweep"]] == [12000.0, 12000.0, 12000.0]


def test_errors_are_counted_and_rated():
    data = measure(errors_above=256)
    last = data["sweep"][-1]
    assert last["socket_errors"] == 4096
    assert last["error_rate"] == pytest.approx(4096 / (3000 + 4096), abs=1e-4)
    assert data["sweep"][0]["error_rate"] == 0


def test_proxy_overhead_is_a_ratio_of_the_same_run():
    data = measure(proxied="http://lb1:8090/", direct="http://app3:8000/")
    assert data["proxy_overhead"]["ratio"] == 1.0
    assert data["proxy_overhead"]["connections"] == 256


def test_report_files(tmp_path):
    loadtest.write(
        measure(proxied="http://lb1:8090/", direct="http://app3:8000/"), tmp_path, "tuned"
    )
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["profile"] == "tuned"
    text = (tmp_path / "report.md").read_text()
    assert "| 8,192 | 3 | 1,000 | - |" in text  # no calibration: no prediction
    assert "= **1.0**" in text
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_gives_the_ratio_at_each_level(tmp_path):
    also = ["http://lb1/counter"]
    base = {"profile": "distro-defaults", **measure(rate=500.0, errors_above=256, also=also)}
    tuned = {"profile": "tuned", **measure(rate=1000.0, also=also)}
    text = loadtest.compare({"distro-defaults": base, "tuned": tuned}, "distro-defaults", "tuned")
    assert "| 256 | 500 | 0 (0.0%) | - | 1,000 | 0 (0.0%) | - | 2.00x |" in text
    assert "| 8,192 | 500 | 4,096 (73.2%) | - | 1,000 | 0 (0.0%) | - | 2.00x |" in text
    assert (
        "| 256 `http://lb1/counter` | 500 | 0 (0.0%) | - | 1,000 | 0 (0.0%) | - | 2.00x |" in text
    )
    loadtest.plot({"distro-defaults": base, "tuned": tuned}, tmp_path / "b.png")
    assert (tmp_path / "b.png").stat().st_size > 10_000


def test_access_log_summary_leaves_out_what_the_client_gave_up():
    log = "\n".join(
        [
            '{"status":200,"request_time":0.100}',
            '{"status":200,"request_time":0.300}',
            '{"status":499,"request_time":9.000}',
            '{"status":502,"request_time":0.200}',
            '{"status":200,"requ',  # cut by the log's buffer
        ]
    )
    summary = loadtest.summarise(log)
    assert summary == {
        "requests": 3,
        "mean_s": 0.2,
        "by_status": {"200": 2, "499": 1, "502": 1},
        "windowed": False,
    }


def test_access_log_summary_counts_only_what_ended_inside_the_window():
    # wrk ran 100.0-110.0; the window leaves out its start-up and what ended after it
    # stopped: an answer written to a connection wrk had closed, and the 499s.
    log = "\n".join(
        [
            '{"msec":100.500,"status":200,"request_time":0.100}',
            '{"msec":105.000,"status":200,"request_time":0.300}',
            '{"msec":109.900,"status":200,"request_time":0.500}',
            '{"msec":110.200,"status":200,"request_time":2.000}',
            '{"msec":110.300,"status":499,"request_time":2.100}',
        ]
    )
    summary = loadtest.summarise(log, (101.0, 110.0))
    assert summary["requests"] == 2
    assert summary["mean_s"] == 0.4
    assert summary["by_status"] == {"200": 4, "499": 1}
    assert summary["windowed"]


def test_littles_law_is_checked_at_the_load_balancer_when_it_was_probed():
    result = fake_runner(1000.0)("http://lb1/", 256, 10)
    lb = {"requests": 9000, "rps": 900.0, "mean_s": 0.2, "in_progress": 180.0}
    law = loadtest.point(result, 256, 12, 0.001, lb)["littles_law"]
    assert law == {
        "measured_at": "lb",
        "lambda_x_w": 180.0,
        "in_flight": 180.0,
        "ratio": 1.0,
        "within_10pct": True,
    }
    # Requests the LB holds but never finishes in the window (stuck upstream) show up as
    # more in progress than its throughput and latency account for.
    law = loadtest.point(result, 256, 12, 0.001, {**lb, "in_progress": 360.0})["littles_law"]
    assert law["ratio"] == 0.5
    assert not law["within_10pct"]


class FakeProbe:
    """A load balancer that answers 100 requests/s taking 0.5 s each, 50 in progress."""

    def settle(self):
        return 0.0

    def start(self, seconds):
        del seconds

    def stop(self, seconds):
        return {"requests": int(100 * seconds), "rps": 100.0, "mean_s": 0.5, "in_progress": 50.0}


def test_every_level_is_probed_at_the_load_balancer_when_given_a_probe():
    data = loadtest.run(
        "http://lb1/",
        levels=[64, 256],
        seconds=1,
        hold_seconds=1,
        model=model(),
        runner=fake_runner(1000.0),
        probe=FakeProbe(),
        log=lambda _: None,
    )
    assert all(p["littles_law"]["measured_at"] == "lb" for p in data["sweep"])
    # 100/s x 0.5 s = 50, and 50 in progress: the law holds at every level.
    assert [p["littles_law"]["ratio"] for p in data["sweep"]] == [1.0, 1.0]


class FakeCpu:
    """Each level costs lb1 100 us and app1 300 us of CPU per request, the load generator
    20 us, and the machine 40 us more than the three account for."""

    def start(self):
        pass

    def stop(self, requests):
        del requests
        hosts = {"lb1": 100.0, "app1": 300.0, "loadgen": 20.0, "other": 40.0}
        return {"hosts": hosts, "machine_us": 460.0, "total_us": 460.0}


HOSTVARS = {"lb1": {"webtier_cpu_pool": "box"}, "app1": {"webtier_cpu_pool": "box"}}


def test_a_run_with_cpu_measured_calibrates_the_model_and_a_calibration_predicts():
    data = measure(cpu_probe=FakeCpu(), also=["http://lb1/counter"])
    calibration = data["calibration"]
    assert set(calibration) == {"/", "/counter"}
    # Unloaded 1 ms, of which 460 us is CPU: 540 us is spent waiting on none.
    assert calibration["/"]["hosts_us"] == {
        "app1": 300.0,
        "lb1": 100.0,
        "loadgen": 20.0,
        "other": 40.0,
    }
    assert calibration["/"]["delay_us"] == 540.0
    assert data["prediction"] is None  # the inventory had none yet
    again = measure(demand=calibration, hostvars=HOSTVARS)
    # One pool of 2 cores (the default) for all: the ceiling is 2 / 460 us.
    assert again["prediction"]["ceiling_rps"] == pytest.approx(2 / 460e-6, rel=1e-3)
    assert again["prediction"]["pools"] == [
        {
            "name": "box",
            "cores": 2,
            "demand_us": 460.0,
            "hosts": ["app1", "lb1", "loadgen", "other"],
        }
    ]
    at = {p["connections"]: p["predicted"] for p in again["sweep"]}
    assert at[8192]["rps"] == pytest.approx(2 / 460e-6, rel=0.01)
    # The fake server does 1,000/s, the model says 4,348/s: measured is 77% below.
    assert at[8192]["error"] == pytest.approx(1000 / at[8192]["rps"] - 1, abs=1e-3)


def test_cpu_columns_and_the_proxy_cpu_ratio_in_the_report(tmp_path):
    data = measure(cpu_probe=FakeCpu(), proxied="http://lb1:8090/", direct="http://app3:8000/")
    data["tiers"] = loadtest.tiers_of({"loadbalancers": ["lb1"], "appservers": ["app1"]})
    loadtest.write(data, tmp_path, "tuned")
    text = (tmp_path / "report.md").read_text()
    assert "CPU us/request: lb / app / loadgen / other = total" in text
    assert "| 100 / 300 / 20 / 40 = **460** |" in text
    # The same fake costs on both paths: the ratio of what serving costs is 1.
    assert data["proxy_overhead"]["cpu_ratio"] == 1.0
    # The calibration, as inventory variables the next run (and make capacity) read back.
    written = yaml.safe_load((tmp_path / "cpu-demand.yml").read_text())
    assert written == {"webtier_cpu_demand": data["calibration"]}


def test_thresholds_name_every_level_that_misses_them():
    data = measure(errors_above=256)
    result = loadtest.missed(data, max_error_rate=0.01, min_rps=1500, max_p99_ms=1000)
    assert result["limits"] == {"max_error_rate": 0.01, "min_rps": 1500, "max_p99_ms": 1000}
    assert "8,192 connections: error rate 57.72% > 1.00%" in result["missed"]
    assert "64 connections: 1,000 req/s < 1,500" in result["missed"]
    assert "8,192 connections: p99 16,384.0 ms > 1,000 ms" in result["missed"]
    assert not loadtest.missed(data, max_error_rate=0.9, min_rps=500)["missed"]


def test_the_endpoint_of_a_url_keys_its_calibration():
    assert loadtest.endpoint("http://lb1/") == "/"
    assert loadtest.endpoint("http://lb1") == "/"
    assert loadtest.endpoint("http://lb1:8090/counter") == "/counter"


def test_only_the_samples_taken_inside_the_window_count_as_in_progress():
    def sample(before, after, reading, writing):
        return (
            f"T {before}\nActive connections: 300\nserver accepts handled requests\n"
            f" 1 1 1\nReading: {reading} Writing: {writing} Waiting: 10\nU {after}\n"
        )

    out = (
        sample("100.0", "100.2", 1, 20)  # before the window (wrk connecting)
        + sample("102.0", "102.4", 10, 191)
        + sample("105.0", "105.2", 0, 101)
        + sample("110.5", "111.0", 0, 3)  # the drain after wrk stopped
    )
    assert loadtest.in_progress(out, (101.0, 110.0)) == [200, 100]


def test_the_probe_samples_stub_status_over_one_keep_alive_connection(tmp_path):
    """The sampler (bash builtins, run here as on the load balancer's host) against a
    stand-in stub_status that counts its connections: every sample is read, stamped
    inside the window, over one connection."""
    import http.server  # noqa: PLC0415
    import threading  # noqa: PLC0415

    connections = []

    class Status(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            connections.append(self.client_address)

        def do_GET(self):
            body = (
                b"Active connections: 43\nserver accepts handled requests\n 7 7 9\n"
                b"Reading: 2 Writing: 41 Waiting: 0 \n"
            )
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            del args

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Status)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log = tmp_path / "access.log"
    log.write_text("")
    try:
        probe = loadtest.LoadBalancerProbe(
            [],
            path=str(log),
            status_url=f"http://127.0.0.1:{server.server_port}/nginx_status",
            every=0.1,
        )
        probe.start(2)
        time.sleep(2)
        summary = probe.stop(2, flush_s=0)
    finally:
        server.shutdown()
    # Reading + Writing less the sample's own request, from samples inside the window
    assert summary["in_progress"] == 42.0
    assert summary["samples"] >= 5
    assert len(connections) == 1


class NothingAnswered(FakeCpu):
    def stop(self, requests):
        return {"hosts": {}, "total_us": None} if requests == 0 else super().stop(requests)


def test_a_level_where_nothing_was_answered_is_reported_not_a_crash(tmp_path):
    def refused(url, connections, seconds, *, target=(), timeout=30):
        result = fake_runner(1000.0)(url, connections, seconds, target=target, timeout=timeout)
        if connections > 256:  # every connection reset: nothing answered
            errors = {"connect": 0, "read": connections, "write": 0, "status": 0, "timeout": 0}
            result.update(requests=0, rps=0.0, errors=errors, socket_errors=connections)
        return result

    data = loadtest.run(
        "http://lb1/",
        levels=[64, 8192],
        seconds=1,
        hold_seconds=1,
        runner=refused,
        cpu_probe=NothingAnswered(),
        log=lambda _: None,
    )
    last = data["sweep"][-1]
    assert last["cpu"] == {"hosts": {}, "total_us": None}
    loadtest.write(data, tmp_path, "distro-defaults")
    assert "| 8,192 | 1 | 0 |" in (tmp_path / "report.md").read_text()
