"""The load test: a wrk concurrency sweep against the load balancer, and its report.

``run`` measures one deployed profile from a load generator inside the sandbox (a
container on the sandbox's network: the load never crosses docker-proxy):

1. the unloaded latency (1 connection), the figure the sizing notes' arithmetic
   ("QPS = concurrency / latency") starts from;
2. the sweep through the load balancer, 64 to 8192 connections by default, each level
   bounded in time (the last level held longer);
3. the proxy overhead: the same app server through the load balancer and hit
   directly, back to back at one concurrency.

It writes ``report.json``, ``report.md`` and ``report.png`` (throughput and latency
against concurrency) into ``--out``, with, at each level, the capacity model's
estimate and a Little's law check: measured QPS x mean latency against the requests in
flight. The three terms are measured on their own at the load balancer (its access log
for the level's window gives QPS and the mean ``$request_time``; ``stub_status``
sampled 4 times a second gives the requests in progress): wrk's own mean is corrected for
coordinated omission (it adds synthetic samples for slow requests), so it is reported
but is not a plain mean.

``compare`` puts two reports (distro defaults and tuned, measured in one run) side by
side: table and plot.

    python -m webtier.ops.loadtest run --container webtier-sandbox-loadgen --out reports/tuned \\
        --url http://lb1/ --proxied http://lb1:8090/ --direct http://app3:8000/
    python -m webtier.ops.loadtest compare reports/distro-defaults reports/tuned --out reports
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from webtier import ROOT
from webtier.model import capacity, cpu
from webtier.model.inventory import load
from webtier.ops import cpuprobe, wrk

LEVELS = cpu.LEVELS
#: A request unanswered after this long counts as a timeout error. The load balancer
#: waits up to 60 s (nginx_proxy_timeout) for an app server; 30 s is what a client
#: holding 8192 connections open on a 2-core machine must be ready to wait.
TIMEOUT = 30
LITTLE_TOLERANCE = 0.10
#: The exit status of a run that missed a threshold (its report is written); an error
#: exits 1.
MISSED = 3
OVERHEAD_ROUNDS = 2

Runner = Callable[..., dict[str, Any]]


def littles_law(
    result: dict[str, Any], connections: int, lb: dict[str, Any] | None
) -> dict[str, Any]:
    """L = lambda x W, each term measured on its own.

    At the load balancer (when its probe ran): lambda = requests it answered per second,
    W = their mean ``$request_time``, L = requests in progress, sampled from
    ``stub_status``. Without the probe: wrk's throughput and mean against the
    connections, which in a closed loop are all in flight (wrk's mean is corrected for
    coordinated omission, so this one is rougher)."""
    if lb and lb["requests"] and lb.get("in_progress"):
        predicted = lb["rps"] * lb["mean_s"]
        observed, source = lb["in_progress"], "lb"
    else:
        predicted = result["rps"] * result["latency_us"]["mean"] / 1e6
        observed, source = connections, "wrk"
    ratio = predicted / observed if observed else 0.0
    return {
        "measured_at": source,
        "lambda_x_w": round(predicted, 1),
        "in_flight": observed,
        "ratio": round(ratio, 3),
        "within_10pct": abs(ratio - 1) <= LITTLE_TOLERANCE,
    }


def point(
    result: dict[str, Any],
    connections: int,
    stack_concurrency: int,
    unloaded_s: float | None,
    lb: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One sweep level: wrk's figures, what the LB saw, Little's law, the CPU one request
    cost on each host (when measured)."""
    lat = result["latency_us"]
    return {
        "connections": connections,
        "cpu": result.get("cpu"),
        "seconds": result["seconds"],
        "requests": result["requests"],
        "rps": result["rps"],
        "latency_ms": {k: round(lat[k] / 1000, 1) for k in ("mean", "p50", "p90", "p99", "max")},
        "lb": lb,
        "errors": result["errors"],
        "socket_errors": result["socket_errors"],
        "non_2xx_3xx": result["non_2xx_3xx"],
        "error_rate": round(
            (result["socket_errors"] + result["non_2xx_3xx"])
            / max(result["requests"] + result["socket_errors"], 1),
            4,
        ),
        "littles_law": littles_law(result, connections, lb),
        # The notes' arithmetic: what the stack's concurrency sustains at the unloaded
        # latency. It ignores that CPUs, not slots, run out first (see "predicted").
        "notes_qps": round(min(connections, stack_concurrency) / unloaded_s, 1)
        if unloaded_s
        else None,
    }


class LoadBalancerProbe:
    """What the load balancer itself saw during one run, read through a command prefix
    (``docker exec NAME``): the requests its JSON access log
    (templates/etc/nginx/nginx.conf.j2) recorded, with their mean ``$request_time``, and
    the requests in progress (``stub_status``: Reading + Writing, less the probe's own),
    sampled every ``every`` seconds. Those are Little's law's three terms, each measured
    on its own at the same boundary."""

    def __init__(
        self,
        target: Sequence[str],
        path: str = "/var/log/nginx/access.log",
        status_url: str = "http://127.0.0.1:8081/nginx_status",
        every: float = 0.25,
    ):
        self.target, self.path, self.status_url, self.every = list(target), path, status_url, every
        self._mark = 0
        self._t0 = 0.0
        self._sampler: subprocess.Popen | None = None

    def _run(self, *argv: str) -> str:
        return subprocess.run(
            wrk.on(self.target, argv), capture_output=True, text=True, check=True
        ).stdout

    def start(self, seconds: float) -> None:
        """Mark the log and sample ``stub_status`` for ``seconds`` from inside the load
        balancer's host, with one loop that stops by itself (one ``docker exec``, not one
        per sample: under load each exec takes seconds). Each sample is stamped with the
        time before and after it (``T`` and ``U`` lines): stop() keeps those taken inside
        the run's window, not the drain after it."""
        self._mark = int(self._run("stat", "-c", "%s", self.path))
        self._sampler = subprocess.Popen(
            wrk.on(self.target, ["timeout", str(int(seconds) + 2), "bash", "-c", self._loop()]),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._t0 = time.time()

    def _loop(self) -> str:
        """The sampler, in bash builtins only: one keep-alive connection to stub_status
        (/dev/tcp), stamps from $EPOCHREALTIME, the pause a read that times out. A loop
        of curl and date processes cost the load balancer's host 20 us of CPU per request
        measured at 3,000 requests/s, which the CPU per request would count as nginx's."""
        rest = self.status_url.split("://", 1)[1]
        address, _, path = rest.partition("/")
        host, _, port = address.partition(":")
        request = f"GET /{path} HTTP/1.1\\r\\nHost: {host}\\r\\n\\r\\n"
        return (
            'pause=$(mktemp -u) && mkfifo "$pause" && exec 4<>"$pause" && rm "$pause"; '
            f"connect() {{ exec 3<>/dev/tcp/{host}/{port or 80}; }}; connect; "
            "while :; do "
            'echo "T $EPOCHREALTIME"; '
            f"printf '{request}' >&3 || {{ connect; continue; }}; "
            "got=; while IFS= read -r -t 5 -u 3 line; do "
            'case $line in Reading:*) echo "$line"; got=1; break ;; esac; done; '
            '[ -n "$got" ] || connect; '
            'echo "U $EPOCHREALTIME"; '
            f"read -r -t {self.every} -u 4 _; "
            "done"
        )

    def settle(self, limit_s: float = 60.0) -> float:
        """Wait until the load balancer has nothing in progress (requests the last level
        left behind, given up by wrk but still queued at the app servers, would
        otherwise load the next level); the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            match = STUB_STATUS.search(self._run("curl", "-s", "-m", "5", self.status_url))
            if match and int(match["reading"]) + int(match["writing"]) <= 1:
                break
            time.sleep(1)
        return round(time.monotonic() - start, 1)

    def stop(self, seconds: float, flush_s: float = 1.5) -> dict[str, Any]:
        """What the LB answered within the run's steady window: from its start (after
        the time wrk took to start and connect) to ``seconds`` after the run began, so
        that requests finished after wrk stopped (answered to a closed connection, or
        499) are left out of QPS and W."""
        ended = time.time()
        out = self._sampler.communicate(timeout=60)[0] if self._sampler else ""
        time.sleep(flush_s)  # the access log is buffered with flush=1s
        # wrk ran `seconds` somewhere between the start and `ended`: the window is inside.
        slack = max(ended - self._t0 - seconds, 0.0)
        window = (self._t0 + slack + min(1.0, seconds / 10), self._t0 + seconds)
        samples = in_progress(out, window)
        summary = summarise(self._run("tail", "-c", f"+{self._mark + 1}", self.path), window)
        span = window[1] - window[0] if summary["windowed"] else seconds
        summary["in_progress"] = round(sum(samples) / len(samples), 1) if samples else None
        summary["samples"] = len(samples)
        summary["window_s"] = round(span, 3)
        summary["rps"] = round(summary["requests"] / span, 1) if span > 0 else 0.0
        return summary


STUB_STATUS = re.compile(r"Reading: (?P<reading>\d+) Writing: (?P<writing>\d+)")
SAMPLE = re.compile(
    r"^T (?P<before>[\d.]+)$(?P<status>.*?)^U (?P<after>[\d.]+)$", re.MULTILINE | re.DOTALL
)


def in_progress(out: str, window: tuple[float, float]) -> list[int]:
    """The requests in progress (Reading + Writing, less the sample's own) of each
    ``stub_status`` sample taken inside ``window``: its midpoint, between the stamps
    before and after it."""
    samples = []
    for m in SAMPLE.finditer(out):
        status = STUB_STATUS.search(m["status"])
        middle = (float(m["before"]) + float(m["after"])) / 2
        if status and window[0] <= middle <= window[1]:
            samples.append(int(status["reading"]) + int(status["writing"]) - 1)
    return samples


def summarise(log: str, window: tuple[float, float] | None = None) -> dict[str, Any]:
    """Requests the access log recorded (every status counted), and those that ended
    within ``window`` (epoch seconds, the log's ``msec``; all of them without one) with
    their mean ``$request_time``, leaving out what the client gave up (499)."""
    times, by_status, windowed = [], {}, False
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut by the log's buffer
        status = str(entry["status"])
        by_status[status] = by_status.get(status, 0) + 1
        if window and "msec" in entry:
            windowed = True
            if not window[0] <= float(entry["msec"]) <= window[1]:
                continue
        if status != "499":
            times.append(float(entry["request_time"]))
    return {
        "requests": len(times),
        "mean_s": round(sum(times) / len(times), 4) if times else 0.0,
        "by_status": by_status,
        "windowed": windowed,
    }


def run(  # noqa: PLR0913 (what to hit, from where, for how long)
    url: str,
    *,
    levels: Sequence[int] = LEVELS,
    seconds: int = 10,
    hold_seconds: int = 30,
    proxied: str | None = None,
    direct: str | None = None,
    also: Sequence[str] = (),
    overhead_connections: int = 256,
    model: capacity.Model | None = None,
    app_hosts: Sequence[str] = (),
    target: Sequence[str] = (),
    probe: LoadBalancerProbe | None = None,
    cpu_probe: cpuprobe.CpuProbe | None = None,
    demand: dict[str, Any] | None = None,
    hostvars: dict[str, dict[str, Any]] | None = None,
    calibrate_at: int = 256,
    runner: Runner = wrk.run,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure one deployed profile; the report's data."""

    def measure(where: str, connections: int, duration: int) -> dict[str, Any]:
        if probe:
            settled = probe.settle()
            if settled > 1:
                log(f"waited {settled} s for the load balancer to drain the last level")
            probe.start(duration)
        if cpu_probe:
            cpu_probe.start()
        result = runner(where, connections, duration, target=target, timeout=TIMEOUT)
        result["cpu"] = cpu_probe.stop(result["requests"]) if cpu_probe else None
        result["lb"] = probe.stop(result["seconds"]) if probe else None
        log(
            f"{where} c={connections} {duration}s: {result['rps']:.0f} req/s, "
            f"mean {result['latency_us']['mean'] / 1000:.1f} ms, "
            f"socket errors {result['socket_errors']}, non-2xx {result['non_2xx_3xx']}"
            + (
                f", CPU {result['cpu']['total_us']:.0f} us/request"
                if (result["cpu"] or {}).get("total_us")
                else ""
            )
        )
        return result

    # The concurrency the notes' arithmetic uses: that of the site's own app hosts when
    # they are known, else the whole stack's.
    if model and app_hosts:
        stack = model.path_concurrency(app_hosts)
    else:
        stack = model.stack_concurrency if model else 0
    unloaded = measure(url, 1, 5)
    unloaded_s = unloaded["latency_us"]["mean"] / 1e6
    data: dict[str, Any] = {
        "url": url,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "timeout_s": TIMEOUT,
        "unloaded": point(unloaded, 1, stack, unloaded_s, unloaded["lb"]),
        "model": {**model.as_dict(), "app_hosts": list(app_hosts), "path_concurrency": stack}
        if model
        else None,
        "sweep": [],
    }
    for i, connections in enumerate(levels):
        duration = hold_seconds if i == len(levels) - 1 else seconds
        result = measure(url, connections, duration)
        data["sweep"].append(point(result, connections, stack, unloaded_s, result["lb"]))
    # Other paths at one concurrency, e.g. an endpoint that also goes to Redis.
    data["also"] = []
    for where in also:
        result = measure(where, overhead_connections, seconds)
        data["also"].append(
            {"url": where, **point(result, overhead_connections, stack, None, result["lb"])}
        )
    predicted(data, demand, hostvars or {}, levels)
    if cpu_probe:
        data["calibration"] = calibrations(data, calibrate_at)
    if proxied and direct:
        # Alternated (LB, direct, LB, direct) so that a slow spell of this shared
        # machine does not land on one side only; the ratio is of the sums.
        runs: dict[str, list[dict[str, Any]]] = {proxied: [], direct: []}
        for _ in range(OVERHEAD_ROUNDS):
            for where in (proxied, direct):
                runs[where].append(measure(where, overhead_connections, seconds))

        def side(where: str) -> dict[str, Any]:
            rps = [r["rps"] for r in runs[where]]
            errors = sum(r["socket_errors"] + r["non_2xx_3xx"] for r in runs[where])
            spent = [r["cpu"] for r in runs[where] if (r.get("cpu") or {}).get("total_us")]
            return {
                "url": where,
                "rps": round(sum(rps) / len(rps), 1),
                "runs": rps,
                "errors": errors,
                # CPU per request on each host, the mean of the runs
                "cpu_us": {
                    h: round(sum(c["hosts"].get(h, 0.0) for c in spent) / len(spent), 1)
                    for h in sorted({h for c in spent for h in c["hosts"]})
                }
                if spent
                else None,
            }

        through, straight = side(proxied), side(direct)
        data["proxy_overhead"] = {
            "connections": overhead_connections,
            "through_lb": through,
            "direct": straight,
            "ratio": round(through["rps"] / straight["rps"], 3) if straight["rps"] else None,
        }
        if through["cpu_us"] and straight["cpu_us"]:
            data["proxy_overhead"]["cpu_ratio"] = round(
                served_cpu(through["cpu_us"]) / served_cpu(straight["cpu_us"]), 3
            )
    return data


def served_cpu(hosts_us: dict[str, float]) -> float:
    """CPU per request of the stack serving it: every host's and the machine's, not the
    load generator's (which the proxy overhead compares with itself)."""
    return sum(v for h, v in hosts_us.items() if h != cpu.LOADGEN)


def endpoint(url: str) -> str:
    """The path a URL asks for (``http://lb1/counter`` -> ``/counter``): the key of its
    calibration in ``webtier_cpu_demand``."""
    rest = url.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


def predicted(
    data: dict[str, Any],
    demand: dict[str, Any] | None,
    hostvars: dict[str, dict[str, Any]],
    levels: Sequence[int],
) -> None:
    """The CPU model's throughput and mean latency beside each measured level, from the
    inventory's calibration of this endpoint (webtier_cpu_demand), if it has one."""
    calibrated = (demand or {}).get(endpoint(data["url"]))
    if not calibrated:
        data["prediction"] = None
        return
    result = cpu.for_endpoint(calibrated, hostvars, [*levels, 256])
    data["prediction"] = {**result, "calibrated": calibrated.get("calibrated", "")}
    for p in data["sweep"]:
        guess = result["levels"][p["connections"]]
        p["predicted"] = {**guess, "error": round(p["rps"] / guess["rps"] - 1, 3)}
    for p in data["also"]:
        other = (demand or {}).get(endpoint(p["url"]))
        if other:
            guess = cpu.for_endpoint(other, hostvars, [p["connections"]])["levels"]
            guess = guess[p["connections"]]
            p["predicted"] = {**guess, "error": round(p["rps"] / guess["rps"] - 1, 3)}


def calibrations(data: dict[str, Any], connections: int) -> dict[str, Any]:
    """What this run measured, as ``webtier_cpu_demand`` entries: each endpoint's CPU per
    request at ``connections`` (or the nearest level) and the unloaded delay."""
    unloaded_ms = data["unloaded"]["latency_ms"]["mean"]
    sweep = [p for p in data["sweep"] if (p.get("cpu") or {}).get("total_us")]
    out: dict[str, Any] = {}
    if sweep:
        at = min(sweep, key=lambda p: abs(p["connections"] - connections))
        out[endpoint(data["url"])] = cpu.calibration(
            at["cpu"], unloaded_ms, at["connections"], data["started"]
        )
    for p in data["also"]:
        if (p.get("cpu") or {}).get("total_us"):
            out[endpoint(p["url"])] = cpu.calibration(
                p["cpu"], unloaded_ms, p["connections"], data["started"]
            )
    return out


TIERS = (("lb", "loadbalancers"), ("app", "appservers"), ("redis", "redis"), ("worker", "workers"))


def tiers_of(members: dict[str, list[str]]) -> dict[str, str]:
    """Each inventory host's tier, by its groups (the CPU columns of the report)."""
    return {h: tier for tier, group in reversed(TIERS) for h in members.get(group, [])}


def by_tier(hosts_us: dict[str, float], tiers: dict[str, str]) -> dict[str, float]:
    """CPU per request summed per tier; the load generator and ``other`` as they are."""
    out: dict[str, float] = {}
    for host, value in hosts_us.items():
        tier = tiers.get(host, host)
        out[tier] = round(out.get(tier, 0.0) + value, 1)
    return out


def _cpu_cell(p: dict[str, Any], tiers: dict[str, str], names: Sequence[str]) -> str:
    if not (p.get("cpu") or {}).get("total_us"):
        return "-"
    per = by_tier(p["cpu"]["hosts"], tiers)
    return " / ".join(f"{per.get(n, 0):.0f}" for n in names) + f" = **{p['cpu']['total_us']:.0f}**"


def _predicted_cells(p: dict[str, Any]) -> tuple[str, str]:
    guess = p.get("predicted")
    if not guess:
        return "-", "-"
    return f"{guess['rps']:,.0f} ({guess['error']:+.0%})", f"{guess['mean_ms']:,.1f}"


def markdown(data: dict[str, Any], profile: str) -> str:
    tiers = data.get("tiers") or {}
    names = [t for t, _ in TIERS if t in tiers.values()] + [cpu.LOADGEN, cpu.OTHER]
    lines = [
        f"# Load test: {profile}",
        "",
        f"`{data['url']}` from inside the sandbox, {data['started']}"
        + (f", commit {data['commit']}" if data.get("commit") else "")
        + (f", {data['machine']}" if data.get("machine") else "")
        + f"; wrk, 2 threads, keep-alive, a request unanswered after {data['timeout_s']} s "
        "counts as a timeout.",
        "",
    ]
    pred = data.get("prediction")
    if pred:
        pools = "; ".join(
            f"{x['name']}: {x['cores']} cores, {x['demand_us']:,.0f} us/request"
            for x in pred["pools"]
        )
        lines += [
            f"CPU model (`webtier_cpu_demand`, calibrated {pred['calibrated']}): {pools}. "
            f"Ceiling {pred['ceiling_rps']:,.0f} req/s (pool {pred['bottleneck_pool']}). "
            f"Unloaded mean latency {data['unloaded']['latency_ms']['mean']} ms.",
            "",
        ]
    lines += [
        "| connections | s | req/s | predicted req/s (measured off by) | mean ms (LB) "
        "| predicted mean ms | p50 ms | p99 ms | errors: socket (connect/read/write/timeout), "
        f"non-2xx | CPU us/request: {' / '.join(names)} = total "
        "| Little: QPS x W / in progress |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for p in data["sweep"]:
        e, lat, lb = p["errors"], p["latency_ms"], p.get("lb") or {}
        lb_mean = (
            f"{lb['mean_s'] * 1000:,.1f}" if lb.get("requests") else f"{lat['mean']:,.1f} (wrk)"
        )
        guess, guess_ms = _predicted_cells(p)
        little = p["littles_law"]
        lines.append(
            f"| {p['connections']:,} | {p['seconds']:.0f} | {p['rps']:,.0f} | {guess} | {lb_mean} "
            f"| {guess_ms} | {lat['p50']:,} | {lat['p99']:,} "
            f"| {p['socket_errors']:,} ({e['connect']}/{e['read']}/{e['write']}/{e['timeout']}), "
            f"{p['non_2xx_3xx']:,} | {_cpu_cell(p, tiers, names)} "
            f"| {little['ratio']:.2f}{'' if little['within_10pct'] else ' (off by >10%)'} |"
        )
    lines += [
        "",
        "CPU per request: each host's cgroup CPU time during the level over the requests "
        "answered, summed per tier; `other` is the machine's busy time no container accounts "
        "for (the kernel's network path between containers). Predicted: mean-value analysis "
        "of the closed loop (one client per connection) over the pools of cores, from the "
        'inventory\'s calibration (`webtier_cpu_demand`: README, "The CPU term"). '
        "Little's law is checked at the load balancer over the level's steady window (from "
        "wrk's start-up to its last second), each term measured on its own: QPS = requests "
        "its access log shows ending inside the window / its length, W = their mean "
        "`$request_time`, in progress = `stub_status` Reading + Writing sampled 4 times a "
        "second inside it.",
    ]
    for p in data.get("also", []):
        guess, _ = _predicted_cells(p)
        lines += [
            "",
            f"`{p['url']}` at {p['connections']} connections: {p['rps']:,.0f} req/s "
            f"(predicted {guess}), p50 {p['latency_ms']['p50']} ms, p99 "
            f"{p['latency_ms']['p99']} ms, socket errors {p['socket_errors']:,}, non-2xx "
            f"{p['non_2xx_3xx']:,}; CPU us/request {_cpu_cell(p, tiers, names)}.",
        ]
    if data.get("proxy_overhead"):
        o = data["proxy_overhead"]
        lines += [
            "",
            f"Proxy overhead at {o['connections']} connections: "
            f"{o['through_lb']['rps']:,.0f} req/s through the load balancer "
            f"(`{o['through_lb']['url']}`) / {o['direct']['rps']:,.0f} req/s direct "
            f"(`{o['direct']['url']}`) = **{o['ratio']}** (means of "
            f"{len(o['direct']['runs'])} alternated runs each: through "
            f"{', '.join(f'{r:,.0f}' for r in o['through_lb']['runs'])}; direct "
            f"{', '.join(f'{r:,.0f}' for r in o['direct']['runs'])}).",
        ]
        if o.get("cpu_ratio"):
            t = by_tier(o["through_lb"]["cpu_us"], tiers)
            d = by_tier(o["direct"]["cpu_us"], tiers)
            lines.append(
                f"CPU per request served (all but the load generator): through the LB "
                f"{served_cpu(o['through_lb']['cpu_us']):,.0f} us (lb {t.get('lb', 0):,.0f}), "
                f"direct {served_cpu(o['direct']['cpu_us']):,.0f} us (app {d.get('app', 0):,.0f}): "
                f"**{o['cpu_ratio']}x**."
            )
    if data.get("thresholds"):
        lines += ["", *threshold_lines(data["thresholds"])]
    return "\n".join(lines) + "\n"


def missed(
    data: dict[str, Any],
    max_error_rate: float | None = None,
    min_rps: float | None = None,
    max_p99_ms: float | None = None,
) -> dict[str, Any]:
    """The thresholds a run was held to, checked at every sweep level and every other URL:
    what each level missed."""
    misses = []
    for p in [*data["sweep"], *data.get("also", [])]:
        where = f"{p['connections']:,} connections" + (f" {p['url']}" if p.get("url") else "")
        if max_error_rate is not None and p["error_rate"] > max_error_rate:
            misses.append(f"{where}: error rate {p['error_rate']:.2%} > {max_error_rate:.2%}")
        if min_rps is not None and p["rps"] < min_rps:
            misses.append(f"{where}: {p['rps']:,.0f} req/s < {min_rps:,.0f}")
        if max_p99_ms is not None and p["latency_ms"]["p99"] > max_p99_ms:
            misses.append(f"{where}: p99 {p['latency_ms']['p99']:,} ms > {max_p99_ms:,.0f} ms")
    limits = {"max_error_rate": max_error_rate, "min_rps": min_rps, "max_p99_ms": max_p99_ms}
    return {"limits": {k: v for k, v in limits.items() if v is not None}, "missed": misses}


def threshold_lines(thresholds: dict[str, Any]) -> list[str]:
    limits = ", ".join(f"{k} {v:g}" for k, v in thresholds["limits"].items())
    if not thresholds["missed"]:
        return [f"Thresholds ({limits}): all met."]
    return [f"Thresholds ({limits}): **{len(thresholds['missed'])} missed**", ""] + [
        f"- {m}" for m in thresholds["missed"]
    ]


def plot(reports: dict[str, dict[str, Any]], path: Path) -> None:
    """Throughput, latency and error rate against concurrency: one colour per profile in
    every panel, every level shown (a level with errors ringed), the CPU model's
    prediction dashed in the profile's colour."""
    import matplotlib  # noqa: PLC0415 (only the report needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415

    plain = FuncFormatter(lambda v, _: f"{v:,.0f}")
    fig, (top, middle, bottom) = plt.subplots(
        3, 1, figsize=(9, 11), sharex=True, gridspec_kw={"height_ratios": [3, 3, 2]}
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (profile, data) in enumerate(reports.items()):
        colour = colours[i % len(colours)]
        sweep = data["sweep"]
        xs = [p["connections"] for p in sweep]
        top.plot(
            xs, [p["rps"] for p in sweep], marker="o", color=colour, label=f"{profile}: measured"
        )
        if all(p.get("predicted") for p in sweep):
            top.plot(
                xs,
                [p["predicted"]["rps"] for p in sweep],
                linestyle="--",
                color=colour,
                label=f"{profile}: predicted (CPU model)",
            )
        failed = [p for p in sweep if p["error_rate"] > 0]
        if failed:
            top.scatter(
                [p["connections"] for p in failed],
                [p["rps"] for p in failed],
                s=160,
                facecolors="none",
                edgecolors=colour,
                linewidths=2,
                zorder=3,
                label=f"{profile}: level with errors",
            )
        for key, style in (("p50", "-"), ("p99", ":")):
            middle.plot(
                xs,
                [p["latency_ms"][key] if p["requests"] else float("nan") for p in sweep],
                linestyle=style,
                marker=".",
                color=colour,
                label=f"{profile}: {key}",
            )
        bottom.plot(
            xs, [p["error_rate"] * 100 for p in sweep], marker="s", color=colour, label=profile
        )
    top.set_ylabel("requests/s")
    top.set_ylim(bottom=0)
    middle.set_ylabel("latency, ms")
    middle.set_yscale("symlog", linthresh=10)
    middle.set_ylim(bottom=0)
    bottom.set_ylabel("errors, % of requests")
    bottom.set_ylim(-2, 102)
    bottom.set_xlabel("concurrent connections")
    bottom.set_xscale("log", base=2)
    for axis in (top, middle, bottom):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
        axis.yaxis.set_major_formatter(plain)
    bottom.xaxis.set_major_formatter(plain)
    bottom.set_xticks(sorted({p["connections"] for d in reports.values() for p in d["sweep"]}))
    first = next(iter(reports.values()))
    fig.suptitle("Throughput, latency and errors against concurrent connections (through the LB)")
    top.set_title(
        " · ".join(
            x
            for x in (first.get("started", ""), first.get("commit", ""), first.get("machine", ""))
            if x
        ),
        fontsize="small",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(data: dict[str, Any], out: Path, profile: str) -> None:
    """report.json, report.md, report.png and, when CPU was measured, cpu-demand.yml: the
    run's calibration as inventory variables (group_vars/all of the environment, or the
    profile's overlay)."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"profile": profile, **data}
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(markdown(data, profile))
    plot({profile: data}, out / "report.png")
    if data.get("calibration"):
        header = (
            f"---\n# CPU per request measured by the load test ({profile}, {data['started']}):\n"
            "# copy to the environment's group_vars/all/ (or the profile's) to calibrate the\n"
            "# capacity model (webtier.model.cpu).\n"
        )
        body = yaml.safe_dump({"webtier_cpu_demand": data["calibration"]}, sort_keys=True)
        (out / "cpu-demand.yml").write_text(header + body)


def _at(data: dict[str, Any], connections: int) -> dict[str, Any] | None:
    return next((p for p in data["sweep"] if p["connections"] == connections), None)


def compare(reports: dict[str, dict[str, Any]], baseline: str, tuned: str) -> str:
    """Two profiles measured in one run, side by side, with the ratios the issue asks for."""
    base, best = reports[baseline], reports[tuned]
    lines = [
        f"# Benchmark: {tuned} against {baseline}",
        "",
        "Both profiles deployed on the same sandbox and measured in one run "
        f"({base['started']} and {best['started']}), same load generator and sweep.",
        "",
        f"| connections | {baseline} req/s | errors | CPU us/request | {tuned} req/s | errors "
        "| CPU us/request | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pairs = [(f"{p['connections']:,}", _at(base, p["connections"]), p) for p in best["sweep"]]
    pairs += [
        (
            f"{p['connections']:,} `{p['url']}`",
            next((x for x in base.get("also", []) if x["url"] == p["url"]), None),
            p,
        )
        for p in best.get("also", [])
    ]
    for label, b, p in pairs:
        if b is None:
            continue
        ratio = p["rps"] / b["rps"] if b["rps"] else float("inf")
        b_cpu, p_cpu = (
            f"{x['cpu']['total_us']:,.0f}" if (x.get("cpu") or {}).get("total_us") else "-"
            for x in (b, p)
        )
        lines.append(
            f"| {label} | {b['rps']:,.0f} | {b['socket_errors'] + b['non_2xx_3xx']:,} "
            f"({b['error_rate']:.1%}) | {b_cpu} | {p['rps']:,.0f} | "
            f"{p['socket_errors'] + p['non_2xx_3xx']:,} ({p['error_rate']:.1%}) | {p_cpu} "
            f"| {ratio:.2f}x |"
        )
    lines.append("")
    for profile, data in ((baseline, base), (tuned, best)):
        if data.get("proxy_overhead"):
            o = data["proxy_overhead"]
            lines.append(
                f"- {profile}: proxy overhead at {o['connections']} connections = "
                f"{o['through_lb']['rps']:,.0f} / {o['direct']['rps']:,.0f} = {o['ratio']}"
            )
        bad = [p["connections"] for p in data["sweep"] if not p["littles_law"]["within_10pct"]]
        lines.append(
            f"- {profile}: Little's law within 10% at "
            f"{len(data['sweep']) - len(bad)}/{len(data['sweep'])} levels"
            + (f" (not at {bad})" if bad else "")
        )
    return "\n".join(lines) + "\n"


def commit() -> str:
    """The checkout's commit, when the report is made from one."""
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def via(container: str | None, ssh: str | None) -> list[str]:
    """The command prefix that runs a command in a sandbox container or on a host over
    SSH (as root: the load test reads the LB's log and installs wrk); none: this machine."""
    if container:
        return ["docker", "exec", "-i", container]
    if ssh:
        return ["ssh", "-o", "BatchMode=yes", ssh]
    return []


SYSTEMD_UNITS = ("nginx.service", "gunicorn-*.service", "uwsgi-*.service", "redis-*.service")


def cpu_probe(
    kind: str, hostvars: dict[str, dict[str, Any]], loadgen: str | None
) -> cpuprobe.CpuProbe | None:
    """The CPU probe a run asked for: the sandbox's containers (named by each host's
    ``ansible_host``) and the load generator's, or each host's systemd units over SSH."""
    if kind == "sandbox":
        containers = {h: str(v.get("ansible_host", h)) for h, v in hostvars.items()}
        if loadgen:
            containers[cpu.LOADGEN] = loadgen
        return cpuprobe.sandbox_probe(containers)
    if kind == "systemd":

        def over_ssh(host: str) -> cpuprobe.Reader:
            prefix = via(None, str(hostvars[host].get("ansible_host", host)))

            def read() -> int:
                def ssh(command: Sequence[str]) -> str:
                    return subprocess.run(
                        wrk.on(prefix, command), capture_output=True, text=True, check=True
                    ).stdout

                return cpuprobe.systemd_ns(ssh, SYSTEMD_UNITS)

            return read

        return cpuprobe.CpuProbe({h: over_ssh(h) for h in hostvars})
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m webtier.ops.loadtest", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure the deployed profile")
    r.add_argument("--url", default="http://lb1/")
    r.add_argument("--container", help="the load generator (docker exec); default: this machine")
    r.add_argument("--loadgen-ssh", help="the load generator, a host reached over SSH")
    r.add_argument("--levels", default=",".join(map(str, LEVELS)))
    r.add_argument("--seconds", type=int, default=10)
    r.add_argument("--hold-seconds", type=int, default=30, help="duration of the last level")
    r.add_argument("--proxied", help="app server through the LB, for the proxy overhead")
    r.add_argument("--direct", help="the same app server hit directly")
    r.add_argument(
        "--also",
        action="append",
        default=[],
        help="another URL measured at the overhead's concurrency (repeatable)",
    )
    r.add_argument(
        "--inventory",
        action="append",
        default=[],
        help="inventory (and profile overlays) for the model's estimate",
    )
    r.add_argument("--app-group", help="inventory group of the app hosts behind --url")
    r.add_argument("--profile", default="tuned")
    r.add_argument("--lb-container", help="read the LB's access log there (Little's law)")
    r.add_argument("--lb-ssh", help="read the LB's access log on this host, over SSH")
    r.add_argument(
        "--cpu",
        choices=["sandbox", "systemd", "none"],
        default="none",
        help="CPU per request: the sandbox containers' cgroups on this machine (and the "
        "load generator's), or each inventory host's systemd units over SSH",
    )
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--max-error-rate", type=float, help="fail above this error rate (0.01 = 1%%)")
    r.add_argument("--min-rps", type=float, help="fail below this throughput at any level")
    r.add_argument("--max-p99-ms", type=float, help="fail above this p99 at any level")
    c = sub.add_parser("compare", help="two reports side by side")
    c.add_argument("baseline", type=Path)
    c.add_argument("tuned", type=Path)
    c.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        model, app_hosts, hostvars, members = None, [], {}, {}
        if args.inventory:
            inventory = load(*args.inventory)
            hostvars, members = inventory.all_host_vars(), inventory.members
            model = capacity.model(hostvars, members)
            app_hosts = inventory.members.get(args.app_group, []) if args.app_group else []
        demand = cpu.demand_of(hostvars) or None
        data = run(
            args.url,
            levels=[int(x) for x in args.levels.split(",")],
            seconds=args.seconds,
            hold_seconds=args.hold_seconds,
            app_hosts=app_hosts,
            also=args.also,
            proxied=args.proxied,
            direct=args.direct,
            model=model,
            target=via(args.container, args.loadgen_ssh),
            probe=LoadBalancerProbe(via(args.lb_container, args.lb_ssh))
            if args.lb_container or args.lb_ssh
            else None,
            cpu_probe=cpu_probe(args.cpu, hostvars, args.container),
            demand=demand,
            hostvars=hostvars,
        )
        data["tiers"] = tiers_of(members)
        data["commit"] = commit()
        data["machine"] = (
            f"{platform.node()}: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs"
        )
        if any(x is not None for x in (args.max_error_rate, args.min_rps, args.max_p99_ms)):
            data["thresholds"] = missed(data, args.max_error_rate, args.min_rps, args.max_p99_ms)
        write(data, args.out, args.profile)
        print((args.out / "report.md").read_text())
        return MISSED if data.get("thresholds", {}).get("missed") else 0
    reports = {}
    for folder in (args.baseline, args.tuned):
        data = json.loads((folder / "report.json").read_text())
        reports[data["profile"]] = data
    names = list(reports)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.md").write_text(compare(reports, names[0], names[1]))
    plot(reports, args.out / "benchmark.png")
    print((args.out / "benchmark.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
