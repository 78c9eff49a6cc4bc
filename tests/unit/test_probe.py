"""The load probe (playbooks/files/webtier_probe.py) counts what a user would see: every
request answered or failed, failures by kind, and how long failures lasted."""

from __future__ import annotations

import importlib.util
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webtier import ROOT

spec = importlib.util.spec_from_file_location(
    "webtier_probe", ROOT / "playbooks/files/webtier_probe.py"
)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


class Outage:
    """A server on 127.0.0.1 that answers 503 between two moments, 200 otherwise."""

    def __init__(self, start: float, end: float):
        self.start, self.end = start, end
        self.failed_at: list[float] = []  # when each 503 was sent
        outage = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the probe's clients use it

            def do_GET(self):
                now = time.monotonic()
                down = outage.start <= now - outage.began < outage.end
                if down:
                    outage.failed_at.append(now)
                body = b"down" if down else b"ok"
                self.send_response(503 if down else 200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def __enter__(self):
        self.began = time.monotonic()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.server.server_address

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_every_request_is_counted_and_a_healthy_run_has_no_failure_span():
    with Outage(start=10, end=10) as address:
        result = probe.load("http", address, "/", 4, 0.5)
    assert result["sent"] == result["ok"] > 0
    assert (result["failed"], result["errors"], result["failing_s"]) == (0, {}, 0)


def test_failures_are_counted_by_kind_over_the_time_they_lasted():
    outage = Outage(start=0.3, end=0.8)
    with outage as address:
        result = probe.load("http", address, "/", 4, 1.2)
    assert result["failed"] == result["errors"]["status 503"] == len(outage.failed_at) > 0
    assert result["ok"] == result["sent"] - result["failed"] > 0
    # The span the probe reports is the one the server failed for, seen from the client.
    served_span = outage.failed_at[-1] - outage.failed_at[0]
    assert result["failing_s"] == pytest.approx(served_span, abs=0.25)
