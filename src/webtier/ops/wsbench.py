"""WebSocket hold benchmark: many connections held open through the load balancer.

    python -m webtier.ops.wsbench [--url ws://127.0.0.1:8090/ws] [--connections 1000]
                              [--duration 30] [--interval 1] [--max-errors 0]

Opens ``--connections`` WebSockets (at most 100 handshakes at a time, as clients
arrive), then, once all are open, for ``--duration`` seconds each sends a message every
``--interval`` seconds and checks its echo comes back intact; then closes them all.
Prints what it held, the messages echoed, their round-trip times and every error by
kind; exits non-zero when there were more than ``--max-errors``. Bounded in time; it
targets the sandbox's FastAPI site by default (``make ws-bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import websockets

#: Handshakes in flight at once while connecting (a burst beyond the listen queues would
#: measure the kernel's SYN handling, not the path).
OPENING = 100
#: How long the connections may take to open, all together.
OPEN_BUDGET = 60.0
FAILURES = (OSError, websockets.WebSocketException, TimeoutError)


@dataclass
class Run:
    opened: int = 0
    held: int = 0  # open through the whole hold
    echoed: int = 0
    rtt: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    opened_in: float = 0.0
    deadline: float = 0.0


async def _client(number: int, args: argparse.Namespace, run: Run, gate, start) -> None:
    try:
        async with gate:
            ws = await websockets.connect(args.url, open_timeout=30)
        run.opened += 1
    except FAILURES as error:
        run.errors[f"connect: {type(error).__name__}"] += 1
        return
    try:
        await start.wait()
        sequence = 0
        while time.monotonic() < run.deadline:
            text = f"{number}:{sequence}"
            sent = time.monotonic()
            await ws.send(text)
            answer = await asyncio.wait_for(ws.recv(), 30)
            if answer == text:
                run.echoed += 1
                run.rtt.append(time.monotonic() - sent)
            else:
                run.errors["wrong echo"] += 1
            sequence += 1
            await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - sent)))
        run.held += 1
        await ws.close()
    except FAILURES as error:
        run.errors[f"while held: {type(error).__name__}"] += 1


async def measure(args: argparse.Namespace) -> Run:
    run, gate, start = Run(), asyncio.Semaphore(OPENING), asyncio.Event()
    began = time.monotonic()
    clients = [
        asyncio.create_task(_client(n, args, run, gate, start)) for n in range(args.connections)
    ]
    while run.opened + sum(run.errors.values()) < args.connections:
        if time.monotonic() - began > OPEN_BUDGET:
            break
        await asyncio.sleep(0.05)
    run.opened_in = time.monotonic() - began
    run.deadline = time.monotonic() + args.duration
    start.set()
    await asyncio.gather(*clients)
    return run


def report(args: argparse.Namespace, run: Run) -> str:
    rtt = sorted(run.rtt) or [0.0]
    p99 = rtt[min(len(rtt) - 1, int(0.99 * len(rtt)))]
    lines = [
        f"{args.url}: {run.opened}/{args.connections} opened in {run.opened_in:.1f} s, "
        f"{run.held} held for {args.duration:.0f} s",
        f"echoes: {run.echoed}, round trip median {statistics.median(rtt) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms",
        f"errors: {sum(run.errors.values())}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in run.errors.items())})" if run.errors else ""),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webtier.ops.wsbench", description=__doc__)
    parser.add_argument("--url", default="ws://127.0.0.1:8090/ws")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--max-errors", type=int, default=0)
    args = parser.parse_args(argv)
    # One descriptor per connection: raise the soft limit to what the hard one allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    run = asyncio.run(measure(args))
    print(report(args, run))
    failed = sum(run.errors.values()) + (args.connections - run.opened - sum(run.errors.values()))
    return 1 if failed > args.max_errors or run.held < run.opened else 0


if __name__ == "__main__":
    sys.exit(main())
