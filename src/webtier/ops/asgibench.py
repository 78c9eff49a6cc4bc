"""ASGI's fast path against its slow path, A/B in one run, on the deployed sandbox.

The FastAPI site (``fastapi``: app3 alone, Gunicorn with uvicorn's worker) through the
load balancer (``http://lb1:8090/``), wrk at ``--connections`` from the load generator
container on the sandbox's network. Each round converges app3 with
``gunicorn_asgi_fast_path`` false (uvicorn's H11 worker: asyncio's own loop and the
pure-Python h11 parser), measures, then true (uvloop and httptools), measures; the
rounds alternate so that the machine's drift falls on both. Each measurement: a short
warm-up, then the cgroup CPU of lb1, app3 and the load generator around a wrk run
(webtier.model.cpu.sandbox_probe), reported as CPU microseconds per request answered.

    python -m webtier.ops.asgibench [--rounds 3] [--connections 256] [--seconds 15]

The report (medians, spread, and the fast/slow ratio of requests a second) is printed
and kept in reports/asgi-bench/report.json and report.md. Nothing here is a test
assertion: the figures are the result. The sandbox is left on the fast path (the
role's default).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

from webtier import ROOT
from webtier.model import cpu
from webtier.ops import cpuprobe, wrk
from webtier.ops.drills import LOADGEN, PREFIX

URL = "http://lb1:8090/"
HOSTS = ("lb1", "app3")
OUT = ROOT / "reports" / "asgi-bench"
#: Each path and its gunicorn_asgi_fast_path.
VARIANTS = {"slow": False, "fast": True}


def converge(fast_path: bool) -> None:
    """app3's app servers with gunicorn_asgi_fast_path set (a new worker class: restart)."""
    subprocess.run(
        [
            "ansible-playbook",
            "site.yml",
            "--tags",
            "app",
            "--limit",
            "app3",
            "-e",  # JSON: a boolean, not the string "false"
            json.dumps({"gunicorn_asgi_fast_path": fast_path}),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def measure(connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run through the load balancer, with CPU per request per host."""
    target = ["docker", "exec", "-i", LOADGEN]
    wrk.run(URL, connections, 3, target=target)  # warm-up: connections, caches, workers
    probe = cpuprobe.sandbox_probe({h: f"{PREFIX}-{h}" for h in HOSTS} | {cpu.LOADGEN: LOADGEN})
    probe.start()
    result = wrk.run(URL, connections, seconds, target=target)
    answered = result["requests"] - result["socket_errors"] - result["non_2xx_3xx"]
    cost = probe.stop(answered)
    return {
        "rps": result["rps"],
        "requests": result["requests"],
        "errors": result["socket_errors"] + result["non_2xx_3xx"],
        "cpu_us": cost["hosts"],
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and spread (min..max) of requests/s and of each host's CPU per request."""
    hosts = runs[0]["cpu_us"].keys()
    rps = [r["rps"] for r in runs]
    return {
        "rps": {"median": statistics.median(rps), "min": min(rps), "max": max(rps)},
        "cpu_us": {h: statistics.median(r["cpu_us"][h] for r in runs) for h in hosts},
        "errors": sum(r["errors"] for r in runs),
    }


def report(result: dict[str, Any]) -> str:
    slow, fast = result["summary"]["slow"], result["summary"]["fast"]
    lines = [
        "# ASGI's fast path against its slow path (FastAPI through lb1:8090)",
        "",
        f"{result['rounds']} alternating rounds, wrk at {result['connections']} connections "
        f"for {result['seconds']} s from the load generator container; CPU per request "
        "answered from each container's cgroup (µs).",
        "",
        "| round | path | req/s | errors | " + " | ".join(f"{h} µs" for h in slow["cpu_us"]) + " |",
        "| ---: | --- | ---: | ---: | " + " | ".join("---:" for _ in slow["cpu_us"]) + " |",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['round']} | {run['path']} | {run['rps']:,.0f} | {run['errors']} | "
            + " | ".join(f"{v:.1f}" for v in run["cpu_us"].values())
            + " |"
        )
    lines += ["", "| path | req/s median (min-max) | " + " | ".join(slow["cpu_us"]) + " |"]
    lines.append("| --- | ---: | " + " | ".join("---:" for _ in slow["cpu_us"]) + " |")
    for name, s in (("slow (asyncio, h11)", slow), ("fast (uvloop, httptools)", fast)):
        rps = s["rps"]
        spread = f"{rps['median']:,.0f} ({rps['min']:,.0f}-{rps['max']:,.0f})"
        lines.append(
            f"| {name} | {spread} | " + " | ".join(f"{v:.1f}" for v in s["cpu_us"].values()) + " |"
        )
    lines += ["", f"fast / slow, median req/s: **{result['ratio']:.2f}x**", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args(argv)
    # the load generator container on the sandbox's network (as the load test starts it)
    subprocess.run(
        ["ansible-playbook", "playbooks/loadtest.yml", "--tags", "loadgen"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    runs = []
    try:
        for number in range(1, args.rounds + 1):
            for path, fast_path in VARIANTS.items():
                converge(fast_path)
                run = {"round": number, "path": path} | measure(args.connections, args.seconds)
                print(json.dumps(run), flush=True)
                runs.append(run)
    finally:
        converge(True)  # the role's default
    by_path = {p: summary([r for r in runs if r["path"] == p]) for p in VARIANTS}
    result = {
        "rounds": args.rounds,
        "connections": args.connections,
        "seconds": args.seconds,
        "runs": runs,
        "summary": by_path,
        "ratio": by_path["fast"]["rps"]["median"] / by_path["slow"]["rps"]["median"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (OUT / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
