#!/usr/bin/env python3
"""GETs to an app server or a load balancer, over HTTP or the uwsgi protocol (what
nginx's uwsgi_pass speaks), with the system python3 only. Two uses:

- the health check of playbooks/deploy.yml, run on the app host itself before the
  host is put back behind the load balancers (``check``: exit 0 when it answers 200);
- a small, bounded load generator for the tests and drills, run inside a container.

Under load it sends GET requests for DURATION seconds (or until it gets SIGTERM) from
CONCURRENCY threads and prints one JSON line: requests sent, answered 2xx, failed, and
failures by kind, over HTTP/1.1 with keep-alive or to a uWSGI socket. It targets the
address given (the test's own container) and stops by itself.

Like nginx in front of the app servers (proxy_next_upstream error, for idempotent
requests), a GET whose connection fails before any byte of the response arrived (a
keep-alive connection closed by a retiring worker, or a connection a retiring gthread
worker had accepted but not read) is sent again, once, on a new connection
(RFC 9112, 9.3.1). It is counted in "retried", not as a failure; a request whose
retry fails too is a failure.

usage: webtier_probe.py http|uwsgi HOST PORT PATH CONCURRENCY DURATION
       webtier_probe.py uwsgi-once HOST PORT PATH   (one request: status and body as JSON)
       webtier_probe.py check http|uwsgi HOST PORT PATH   (one request: exit 0 on 200)
       webtier_probe.py failing JSON   (JSON: a list of {address, protocol, path}; prints
                                        the addresses that do not answer 200, or that
                                        refuse a connection where path is null)
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter


def uwsgi_exchange(host: str, port: int, path: str) -> tuple[int, bytes]:
    """One request over the uwsgi protocol; returns (HTTP status, body)."""
    params = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": path,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": host,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "REMOTE_ADDR": "127.0.0.1",
    }
    body = b"".join(
        struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
        for k, v in params.items()
    )
    reply = b""
    with socket.create_connection((host, port), timeout=10) as conn:
        # uwsgi packet header: modifier1 (0 = WSGI), size of the vars block, modifier2.
        conn.sendall(struct.pack("<BHB", 0, len(body), 0) + body)
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, content = reply.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return (int(status_line[1]) if len(status_line) > 1 else 0), content


def uwsgi_request(host: str, port: int, path: str) -> int:
    return uwsgi_exchange(host, port, path)[0]


def check(protocol: str, host: str, port: int, path: str) -> int:
    try:
        if protocol == "uwsgi":
            status = uwsgi_request(host, port, path)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=5)
            connection.request("GET", path)
            status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        print(f"{protocol}://{host}:{port}{path}: {error}")
        return 1
    print(f"{protocol}://{host}:{port}{path}: {status}")
    return 0 if status == 200 else 1


def failing(probes: list[dict]) -> list[str]:
    """The addresses of ``probes`` that do not serve (deploy.yml asks this of a load
    balancer before it drains a host: which of its peers would be left)."""
    down = []
    for probe in probes:
        host, _, port = probe["address"].rpartition(":")
        if probe["path"] is None:
            try:
                socket.create_connection((host, int(port)), timeout=5).close()
            except OSError:
                down.append(probe["address"])
        elif check(probe["protocol"], host, int(port), probe["path"]) != 0:
            down.append(probe["address"])
    return down


def run_all(worker, concurrency: int) -> None:
    """``concurrency`` threads of ``worker``, waited for in steps (a bare join would hold
    off the SIGTERM handler)."""
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)


def exchange(conn: http.client.HTTPConnection, mode: str, path: str) -> tuple[int, bytes]:
    """One request on ``conn`` (a GET, or in mode post a POST): its status and body."""
    if mode == "post":
        conn.request("POST", path, body=b"drill", headers={"Content-Type": "text/plain"})
    else:
        conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.will_close:
        conn.close()
    return response.status, body


def load(mode: str, address: tuple[str, int], path: str, concurrency: int, duration: float) -> dict:
    """``concurrency`` clients GET ``path`` for ``duration`` seconds: the counts. Mode
    ``post`` POSTs instead and keeps the ``id`` of every write answered 201 (the Django
    demo's /notes), which the database drills look for afterwards."""
    (host, port), deadline = address, time.monotonic() + duration
    # SIGTERM ends the run early, with its counts: a test stops the load when what it
    # measured is done (pkill inside the container), whatever that took.
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    lock = threading.Lock()
    counts: Counter[str] = Counter()
    slowest = [0.0]  # seconds: the longest request, answered or failed
    failing: list[float] = []  # when the first and the latest failed request ended

    def record(kind: str, started: float) -> None:
        now = time.monotonic()
        with lock:
            counts[kind] += 1
            slowest[0] = max(slowest[0], now - started)
            if kind != "ok":
                failing[:] = [failing[0] if failing else now, now]

    retried = Counter()
    acknowledged: list[int] = []

    def http_get(conn: http.client.HTTPConnection) -> int:
        status, body = exchange(conn, mode, path)
        if mode == "post" and status == 201:
            with lock:
                acknowledged.append(json.loads(body)["id"])
        return status

    def worker() -> None:
        conn = None
        while time.monotonic() < deadline and not stopped.is_set():
            started = time.monotonic()
            try:
                if mode == "uwsgi":
                    status = uwsgi_request(host, port, path)
                else:
                    reused = conn is not None and conn.sock is not None
                    if conn is None or conn.sock is None:
                        conn = http.client.HTTPConnection(host, port, timeout=10)
                    try:
                        status = http_get(conn)
                    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                        conn.close()
                        with lock:
                            retried["keep-alive closed" if reused else "new connection reset"] += 1
                        status = http_get(conn)
                record("ok" if 200 <= status < 300 else f"status {status}", started)
            except (OSError, http.client.HTTPException) as exc:
                record(type(exc).__name__, started)
                if conn is not None:
                    conn.close()
                    conn = None

    run_all(worker, concurrency)
    sent = sum(counts.values())
    return {
        "sent": sent,
        "ok": counts["ok"],
        "failed": sent - counts["ok"],
        "errors": {k: v for k, v in counts.items() if k != "ok"},
        "retried": retried,
        "max_ms": round(slowest[0] * 1000, 1),
        # Seconds from the first failed request to the last: how long failures lasted.
        "failing_s": round(failing[-1] - failing[0], 2) if failing else 0,
    } | ({"acknowledged": sorted(acknowledged)} if mode == "post" else {})


def main() -> int:
    if sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    if sys.argv[1] == "failing":
        with contextlib.redirect_stdout(sys.stderr):  # each probe's line, apart from the answer
            found = failing(json.loads(sys.argv[2]))
        print(json.dumps(found))
        return 0
    if sys.argv[1] == "uwsgi-once":
        status, content = uwsgi_exchange(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        print(json.dumps({"status": status, "body": content.decode(errors="replace")}))
        return 0
    mode, host, port, path, concurrency, duration = sys.argv[1:7]
    result = load(mode, (host, int(port)), path, int(concurrency), float(duration))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
