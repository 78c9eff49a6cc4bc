"""CPU-bound work inline or on the queue: what it does to the cheap requests beside it.

On the deployed sandbox (with its worker tier), through the load balancer, from the load
generator container on the sandbox's network. Three runs of the same length:

1. **baseline**: wrk on ``/`` (the cheap page) at ``--connections``;
2. **inline**: the same, while ``/work?n=N&mode=inline`` requests arrive at ``--rate``
   a second (open loop: each is sent on time whatever the others do): the web workers
   compute them;
3. **queue**: the same with ``mode=queue``: the web workers enqueue (202) and the
   worker tier computes them.

Then the queue is watched (``/queue``) until it is empty, and every enqueued job is
asked for its result (``/jobs/<id>``). The report gives ``/``'s p99 and throughput in
each run and their ratios to the baseline, the work requests' own answers, the time the
queue took to drain and the jobs that completed.

    python -m webtier.ops.queuebench [--connections 256] [--seconds 20] [--rate 20] [--n 400000]

Thresholds (``--max-queue-p99-ratio``, default 1.5) make the command exit non-zero
when missed. Nothing here is a test assertion: the report is the result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from webtier import ROOT
from webtier.model import capacity
from webtier.ops import wrk
from webtier.ops.drills import LOADGEN, cast, get_json, sh

#: Sends GET PATH at RATE a second for SECONDS (one thread per request in flight, at
#: most 256), then prints one JSON line: the answers by status, latencies, and the
#: Location of every 202.
ARRIVALS = r"""
import http.client, json, sys, threading, time
host, path, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
lock, status, latencies, jobs, errors = threading.Lock(), {}, [], [], []
slots = threading.BoundedSemaphore(256)
def one():
    started = time.monotonic()
    try:
        conn = http.client.HTTPConnection(host, 80, timeout=30)
        conn.request("GET", path)
        reply = conn.getresponse()
        reply.read()
        code, where = reply.status, reply.getheader("Location")
        conn.close()
    except OSError as error:
        with lock:
            errors.append(type(error).__name__)
        return
    finally:
        slots.release()
    with lock:
        status[code] = status.get(code, 0) + 1
        latencies.append(time.monotonic() - started)
        if code == 202 and where:
            jobs.append(where)
start, sent, threads = time.monotonic(), 0, []
while time.monotonic() - start < seconds:
    if sent < (time.monotonic() - start) * rate:
        slots.acquire()
        t = threading.Thread(target=one)
        t.start()
        threads.append(t)
        sent += 1
    else:
        time.sleep(0.002)
for t in threads:
    t.join()
latencies.sort()
def pick(q):
    if not latencies:
        return None
    return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)
print(json.dumps({"sent": sent, "status": status, "errors": len(errors), "p50_ms": pick(0.5),
                  "p99_ms": pick(0.99), "jobs": jobs}))
"""


def _arrivals(path: str, rate: float, seconds: int, out: dict[str, Any]) -> None:
    proc = subprocess.run(
        ["docker", "exec", "-i", LOADGEN, "python3", "-", cast().lb, path, str(rate), str(seconds)],
        input=ARRIVALS,
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    out.update(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_phase(name: str, args: argparse.Namespace, work_mode: str | None) -> dict[str, Any]:
    """wrk on / for args.seconds, with /work?mode=work_mode arriving beside it (or not)."""
    work: dict[str, Any] = {}
    sender = None
    if work_mode:
        path = f"/work?n={args.n}&mode={work_mode}"
        sender = threading.Thread(target=_arrivals, args=(path, args.rate, args.seconds, work))
        sender.start()
    page = wrk.run(
        cast().url,  # the load balancer as the load generator reaches it
        args.connections,
        args.seconds,
        target=["docker", "exec", "-i", LOADGEN],
        timeout=30,
    )
    if sender:
        sender.join()
    return {"name": name, "work_mode": work_mode, "page": page, "work": work}


def drain(limit: float = 600) -> dict[str, Any]:
    """Seconds until the queue is empty and no task is held unacknowledged."""
    started, deepest = time.monotonic(), 0
    while time.monotonic() - started < limit:
        _, seen = get_json("/queue")
        deepest = max(deepest, seen.get("depth", 0))
        if seen.get("depth") == 0 and seen.get("unacked") == 0:
            return {
                "drained": True,
                "seconds": round(time.monotonic() - started, 1),
                "deepest": deepest,
            }
        time.sleep(0.5)
    return {"drained": False, "seconds": limit, "deepest": deepest}


def completed(jobs: list[str]) -> tuple[dict[str, int], float | None]:
    """Each job's answer, counted by status, and the mean CPU seconds the finished ones
    took (what the worker measured: the task_seconds of the capacity model)."""
    counts: dict[str, int] = {}
    cpu = []
    for job in jobs:
        status, body = get_json(job)
        counts[str(status)] = counts.get(str(status), 0) + 1
        if status == 200:
            cpu.append(body["result"]["cpu_ms"] / 1000)
    return counts, (sum(cpu) / len(cpu) if cpu else None)


def modelled_rate(task_seconds: float | None) -> float | None:
    """Tasks per second the capacity model says the sandbox's worker tier serves at,
    with the measured task time."""
    if not task_seconds:
        return None
    m = capacity.from_inventory(str(ROOT / "inventory/sandbox"))
    return sum(
        capacity.served_per_s(q["processes"], q["cpus"], task_seconds)
        for h in m.tier("worker")
        for q in h.queues
    )


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def report(result: dict[str, Any]) -> str:
    base = result["phases"][0]["page"]
    lines = [
        "# CPU-bound work inline or on the queue",
        "",
        f"`/` by wrk at {result['connections']} connections for {result['seconds']} s per run; "
        f"`/work?n={result['n']}` arriving at {result['rate']}/s beside it in the second and "
        "third runs (through the sandbox's load balancer, from its load generator).",
        "",
        "| run | `/` req/s | `/` p99 ms | p99 vs baseline | `/` errors | `/work` answers | "
        "`/work` p99 ms |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for phase in result["phases"]:
        page, work = phase["page"], phase["work"]
        errors = page["socket_errors"] + page["non_2xx_3xx"]
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(work.get("status", {}).items()))
        if work.get("errors"):
            answers += f", socket errors: {work['errors']}"
        lines.append(
            f"| {phase['name']} | {page['rps']:,.0f} | {page['latency_us']['p99'] / 1000:,.1f} | "
            f"{ratio(page['latency_us']['p99'], base['latency_us']['p99'])}x | {errors} | "
            f"{answers or '-'} | {work.get('p99_ms', '-')} |"
        )
    d = result["drain"]
    lines += [
        "",
        f"Queue after the third run: deepest {d['deepest']}, "
        + (f"empty {d['seconds']} s after the run" if d["drained"] else "NOT empty")
        + f"; jobs answered by status: {result['jobs']}.",
        "",
    ]
    if result["task_seconds"]:
        lines += [
            f"A job took {result['task_seconds'] * 1000:.1f} ms of CPU on the worker (mean). "
            f"The capacity model serves the worker tier at {result['modelled_rate']:.0f} "
            f"tasks/s with it (min(processes, CPUs) / task time); the queue drained at "
            f"{result['drain_rate']} tasks/s once the load had stopped. The task's own CPU "
            "time leaves out Celery's work per task (the message, the acknowledgement, the "
            "result): for the model, task_seconds = the worker tier's CPUs / the drain rate.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m webtier.ops.queuebench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="/work requests a second")
    parser.add_argument("--n", type=int, default=400_000, help="burn(n) rounds per /work")
    parser.add_argument("--max-queue-p99-ratio", type=float, default=1.5)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "queue-bench")
    args = parser.parse_args(argv)
    sh("ansible-playbook", "playbooks/loadtest.yml", "--tags", "loadgen")
    phases = [
        run_phase("baseline", args, None),
        run_phase("inline", args, "inline"),
        run_phase("queue", args, "queue"),
    ]
    jobs = phases[2]["work"].get("jobs", [])
    drained = drain()
    counts, task_seconds = completed(jobs)
    result = {
        **{k: getattr(args, k) for k in ("connections", "seconds", "rate", "n")},
        "phases": phases,
        "drain": drained,
        "jobs": counts,
        "task_seconds": task_seconds,
        "drain_rate": round(drained["deepest"] / drained["seconds"], 1)
        if drained["drained"] and drained["seconds"]
        else None,
        "modelled_rate": modelled_rate(task_seconds),
    }
    for phase in phases:
        phase["work"].pop("jobs", None)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "queue-bench.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (args.out / "queue-bench.md").write_text(text)
    print(text)
    base, queued = (p["page"]["latency_us"]["p99"] for p in (phases[0], phases[2]))
    missed = []
    if (ratio(queued, base) or 0) > args.max_queue_p99_ratio:
        missed.append(f"queue run's / p99 {ratio(queued, base)}x > {args.max_queue_p99_ratio}x")
    if not result["drain"]["drained"] or set(result["jobs"]) - {"200"}:
        missed.append("the queue did not drain, or a job did not complete")
    for line in missed:
        print(f"MISSED: {line}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
