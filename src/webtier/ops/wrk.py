"""Run wrk (Debian's package) and read its results as data.

wrk prints a human summary; its Lua ``done`` hook can print anything. The script below
prints one machine-readable line (prefixed ``WRK_JSON``) with the counts and latency
percentiles a report needs, so nothing is scraped from the human text.

wrk runs where the load should come from: on this machine (``target=[]``), inside a
container (``target=["docker", "exec", "-i", NAME]``, never through docker-proxy) or on
a load-generator host (``target=["ssh", HOST]``).

    python -m webtier.ops.wrk --container gunicorn-flask http://127.0.0.1:8000/ -c 256 -d 10
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MARK = "WRK_JSON "
TIMEOUT = 10  # seconds: a request slower than this counts as a timeout error
SCRIPT_PATH = "/tmp/webtier-wrk.lua"  # on the load generator's own host

# done() runs once after the run, in wrk's main thread, with the merged statistics.
LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@MARK@{"requests":%d,"duration_us":%d,"bytes":%d,'
    .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
""".replace("@MARK@", MARK)


def command(  # noqa: PLR0913, PLR0917 (wrk's own options, one each)
    url: str,
    connections: int,
    seconds: int,
    threads: int = 2,
    timeout: int = TIMEOUT,
    headers: Sequence[str] = (),
) -> list[str]:
    """The wrk command line; threads never exceed connections (wrk refuses that)."""
    return [
        "wrk",
        *(f"--header={header}" for header in headers),
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        f"--timeout={timeout}s",
        f"--script={SCRIPT_PATH}",
        url,
    ]


def parse(output: str) -> dict[str, Any]:
    """The result of one run: wrk's counts plus requests/s and the error total."""
    for line in output.splitlines():
        if line.startswith(MARK):
            result = json.loads(line[len(MARK) :])
            break
    else:
        raise ValueError(f"no {MARK.strip()} line in wrk's output:\n{output}")
    seconds = result["duration_us"] / 1e6
    result["seconds"] = round(seconds, 3)
    result["rps"] = round(result["requests"] / seconds, 1) if seconds else 0.0
    # "status" counts answers with a status >= 400: errors, but not socket errors.
    result["socket_errors"] = sum(v for k, v in result["errors"].items() if k != "status")
    result["non_2xx_3xx"] = result["errors"]["status"]
    return result


def on(target: Sequence[str], argv: Sequence[str]) -> list[str]:
    """``argv`` run through a command prefix. ssh hands the remote shell one string, so
    the command is quoted into one; docker exec (or nothing) takes the words as they are."""
    prefix = list(target)
    if prefix and Path(prefix[0]).name == "ssh":
        return [*prefix, shlex.join(argv)]
    return [*prefix, *argv]


def run(  # noqa: PLR0913 (the wrk options above, and where it runs)
    url: str,
    connections: int,
    seconds: int,
    *,
    target: Sequence[str] = (),
    threads: int = 2,
    headers: Sequence[str] = (),
    timeout: int = TIMEOUT,
) -> dict[str, Any]:
    """Run wrk on ``target`` (a command prefix; empty: this machine) and return parse().

    ``timeout``: seconds after which wrk gives up on a request and counts a timeout."""
    subprocess.run(
        on(target, ["sh", "-c", f"cat > {SCRIPT_PATH}"]), input=LUA, text=True, check=True
    )
    # Containers get wrk on first use (Debian's package); this machine has it from setup,
    # a load-generator host from playbooks/loadtest.yml.
    subprocess.run(
        on(
            target,
            [
                "sh",
                "-c",
                "command -v wrk >/dev/null || { apt-get update -qq && "
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }",
            ],
        ),
        check=True,
    )
    proc = subprocess.run(
        on(target, command(url, connections, seconds, threads, timeout, headers)),
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + timeout + 60,
    )
    if proc.returncode:
        # wrk stops at once when the target refuses the first connection.
        raise RuntimeError(f"wrk failed against {url}: {proc.stderr.strip() or proc.stdout}")
    return parse(proc.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=256)
    parser.add_argument("-d", "--duration", type=int, default=10, help="seconds")
    parser.add_argument("-t", "--threads", type=int, default=2)
    parser.add_argument("--container", help="run wrk inside this container (docker exec)")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        help="extra request header; 'Connection: close' for servers without keep-alive",
    )
    args = parser.parse_args(argv)
    target = ["docker", "exec", "-i", args.container] if args.container else []
    result = run(
        args.url,
        args.connections,
        args.duration,
        target=target,
        threads=args.threads,
        headers=args.header,
    )
    where = args.container or "localhost"
    print(json.dumps(result))
    print(
        f"{where} {args.url} c={args.connections} {args.duration}s: "
        f"{result['rps']:.0f} req/s, p50 {result['latency_us']['p50'] / 1000:.1f} ms, "
        f"p99 {result['latency_us']['p99'] / 1000:.1f} ms, "
        f"socket errors {result['socket_errors']}, non-2xx/3xx {result['non_2xx_3xx']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
