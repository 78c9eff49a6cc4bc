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

    python -m webtier.loadtest run --container webtier-sandbox-loadgen --out reports/tuned \\
        --url http://lb1/ --proxied http://lb1:8090/ --direct http://app3:8000/
    python -m webtier.loadtest compare reports/distro-defaults reports/tuned --out reports
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from webtier import capacity, wrk
from webtier.inventory import load

LEVELS = (64, 128, 256, 512, 1024, 2048, 4096, 8192)
#: A request unanswered after this long counts as a timeout error. The load balancer
#: waits up to 60 s (nginx_proxy_timeout) for an app server; 30 s is what a client
#: holding 8192 connections open on a 2-core machine must be ready to wait.
TIMEOUT = 30
LITTLE_TOLERANCE = 0.10
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
    """One sweep level: wrk's figures, what the LB saw, Little's law, the model's estimate."""
    lat = result["latency_us"]
    return {
        "connections": connections,
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
        # latency. It ignores that CPUs, not slots, run out first.
        "model_qps": round(min(connections, stack_concurrency) / unloaded_s, 1)
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
        self._sampler: subprocess.Popen | None = None

    def _run(self, *argv: str) -> str:
        return subprocess.run(
            [*self.target, *argv], capture_output=True, text=True, check=True
        ).stdout

    def start(self, seconds: float) -> None:
        """Mark the log and sample ``stub_status`` for ``seconds`` from inside the load
        balancer's host, with one curl that stops by itself (one ``docker exec``, not one
        per sample: under load each exec takes seconds)."""
        self._mark = int(self._run("stat", "-c", "%s", self.path))
        # One curl, one keep-alive connection, paced by --rate; the ?[1-N] glob makes
        # N requests.
        count = max(int(seconds / self.every), 1)
        self._sampler = subprocess.Popen(
            [
                *self.target,
                "timeout",
                str(int(seconds) + 2),
                "curl",
                "-s",
                "--rate",
                f"{round(60 / self.every)}/m",
                f"{self.status_url}?[1-{count}]",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
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
        samples: list[int] = []
        if self._sampler:
            out, _ = self._sampler.communicate(timeout=60)
            samples = [int(m["reading"]) + int(m["writing"]) - 1 for m in STUB_STATUS.finditer(out)]
        time.sleep(flush_s)  # the access log is buffered with flush=1s
        summary = summarise(self._run("tail", "-c", f"+{self._mark + 1}", self.path))
        summary["in_progress"] = round(sum(samples) / len(samples), 1) if samples else None
        summary["samples"] = len(samples)
        summary["rps"] = round(summary["requests"] / seconds, 1) if seconds else 0.0
        return summary


STUB_STATUS = re.compile(r"Reading: (?P<reading>\d+) Writing: (?P<writing>\d+)")


def summarise(log: str) -> dict[str, Any]:
    times, by_status = [], {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut by the log's buffer
        status = str(entry["status"])
        by_status[status] = by_status.get(status, 0) + 1
        if status != "499":
            times.append(float(entry["request_time"]))
    return {
        "requests": len(times),
        "mean_s": round(sum(times) / len(times), 4) if times else 0.0,
        "by_status": by_status,
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
        result = runner(where, connections, duration, target=target, timeout=TIMEOUT)
        result["lb"] = probe.stop(result["seconds"]) if probe else None
        log(
            f"{where} c={connections} {duration}s: {result['rps']:.0f} req/s, "
            f"mean {result['latency_us']['mean'] / 1000:.1f} ms, "
            f"socket errors {result['socket_errors']}, non-2xx {result['non_2xx_3xx']}"
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
            return {
                "url": where,
                "rps": round(sum(rps) / len(rps), 1),
                "runs": rps,
                "errors": errors,
            }

        through, straight = side(proxied), side(direct)
        data["proxy_overhead"] = {
            "connections": overhead_connections,
            "through_lb": through,
            "direct": straight,
            "ratio": round(through["rps"] / straight["rps"], 3) if straight["rps"] else None,
        }
    return data


def markdown(data: dict[str, Any], profile: str) -> str:
    lines = [
        f"# Load test: {profile}",
        "",
        f"`{data['url']}` from inside the sandbox, {data['started']}; wrk, 2 threads, "
        f"keep-alive, a request unanswered after {data['timeout_s']} s counts as a timeout.",
        "",
    ]
    if data.get("model"):
        m = data["model"]
        lines += [
            f"Capacity model: bottleneck **{m['bottleneck']}** tier, "
            f"{m['stack_concurrency']:,} requests at once"
            + (
                f"; this site's app hosts ({', '.join(m['app_hosts'])}) with the LB: "
                f"{m['path_concurrency']:,}"
                if m.get("app_hosts")
                else ""
            )
            + f". Unloaded mean latency {data['unloaded']['latency_ms']['mean']} ms.",
            "",
        ]
    lines += [
        "| connections | s | req/s | model req/s | p50 ms | p90 | p99 | wrk mean* "
        "| socket errors (connect/read/write/timeout) | non-2xx | LB mean ms | in progress "
        "at LB | Little: QPS x W / in progress |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for p in data["sweep"]:
        e, lat = p["errors"], p["latency_ms"]
        model = f"{p['model_qps']:,.0f}" if p["model_qps"] else "-"
        lb = p.get("lb") or {}
        lb_mean = f"{lb['mean_s'] * 1000:.1f}" if lb.get("requests") else "-"
        in_progress = f"{lb['in_progress']:,.0f}" if lb.get("in_progress") is not None else "-"
        little = p["littles_law"]
        lines.append(
            f"| {p['connections']:,} | {p['seconds']:.0f} | {p['rps']:,.0f} | {model} "
            f"| {lat['p50']} | {lat['p90']} | {lat['p99']} | {lat['mean']} "
            f"| {p['socket_errors']:,} ({e['connect']}/{e['read']}/{e['write']}/{e['timeout']}) "
            f"| {p['non_2xx_3xx']:,} | {lb_mean} | {in_progress} "
            f"| {little['ratio']:.2f}{'' if little['within_10pct'] else ' (off by >10%)'} |"
        )
    lines += [
        "",
        "\\* wrk's mean is corrected for coordinated omission (it adds synthetic samples for "
        "slow requests), so Little's law is checked at the load balancer, each term measured "
        "on its own: QPS = requests in its access log / s, W = their mean `$request_time`, "
        "in progress = `stub_status` Reading + Writing sampled 4 times a second (fewer when "
        "the LB is saturated: the samples wait their turn). Model req/s is the sizing notes' "
        "arithmetic: min(connections, the stack's concurrency) / the unloaded latency.",
    ]
    for p in data.get("also", []):
        lines += [
            "",
            f"`{p['url']}` at {p['connections']} connections: {p['rps']:,.0f} req/s, p50 "
            f"{p['latency_ms']['p50']} ms, p99 {p['latency_ms']['p99']} ms, socket errors "
            f"{p['socket_errors']:,}, non-2xx {p['non_2xx_3xx']:,}.",
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
    return "\n".join(lines) + "\n"


def plot(reports: dict[str, dict[str, Any]], path: Path) -> None:
    """Throughput and latency against concurrency, one line per profile."""
    import matplotlib  # noqa: PLC0415 (only the report needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 8), sharex=True)
    for profile, data in reports.items():
        xs = [p["connections"] for p in data["sweep"]]
        top.plot(xs, [p["rps"] for p in data["sweep"]], marker="o", label=f"{profile}: measured")
        if len(reports) == 1 and data["sweep"][0]["model_qps"]:
            top.plot(
                xs,
                [p["model_qps"] for p in data["sweep"]],
                linestyle="--",
                label="model: min(conns, concurrency) / unloaded latency",
            )
        errors = [(p["connections"], p["rps"]) for p in data["sweep"] if p["error_rate"] > 0]
        if errors:
            top.scatter(
                *zip(*errors, strict=True),
                marker="x",
                s=120,
                color="red",
                zorder=3,
                label=f"{profile}: errors",
            )
        for key, style in (("p50", "-"), ("p99", ":")):
            # No line through levels where nothing was answered (no latency to plot).
            bottom.plot(
                xs,
                [p["latency_ms"][key] if p["requests"] else None for p in data["sweep"]],
                linestyle=style,
                marker=".",
                label=f"{profile}: {key}",
            )
    top.set_ylabel("requests/s")
    top.set_title("Throughput and latency against concurrent connections (through the LB)")
    top.legend(fontsize="small")
    top.grid(True, alpha=0.3)
    if len(reports) == 1:
        top.set_yscale("log")
    bottom.set_xscale("log", base=2)
    bottom.set_yscale("log")
    bottom.set_xlabel("concurrent connections")
    bottom.set_ylabel("latency, ms")
    bottom.legend(fontsize="small")
    bottom.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(data: dict[str, Any], out: Path, profile: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"profile": profile, **data}
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(markdown(data, profile))
    plot({profile: data}, out / "report.png")


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
        f"| connections | {baseline} req/s | errors | {tuned} req/s | errors | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
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
        lines.append(
            f"| {label} | {b['rps']:,.0f} | {b['socket_errors'] + b['non_2xx_3xx']:,} "
            f"({b['error_rate']:.1%}) | {p['rps']:,.0f} | "
            f"{p['socket_errors'] + p['non_2xx_3xx']:,} ({p['error_rate']:.1%}) | {ratio:.2f}x |"
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webtier.loadtest", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure the deployed profile")
    r.add_argument("--url", default="http://lb1/")
    r.add_argument("--container", help="the load generator (docker exec); default: this machine")
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
    r.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare", help="two reports side by side")
    c.add_argument("baseline", type=Path)
    c.add_argument("tuned", type=Path)
    c.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        model, app_hosts = None, []
        if args.inventory:
            inventory = load(*args.inventory)
            model = capacity.model(inventory.all_host_vars(), inventory.members)
            app_hosts = inventory.members.get(args.app_group, []) if args.app_group else []
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
            target=["docker", "exec", "-i", args.container] if args.container else [],
            probe=LoadBalancerProbe(["docker", "exec", args.lb_container])
            if args.lb_container
            else None,
        )
        write(data, args.out, args.profile)
        print((args.out / "report.md").read_text())
        return 0
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
