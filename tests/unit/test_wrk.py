"""webtier.ops.wrk drives the real wrk against a local server and reads its counts as data."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webtier.ops import wrk

pytestmark = pytest.mark.skipif(not shutil.which("wrk"), reason="wrk comes from make setup")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        status = 500 if self.path == "/broken" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # wrk closes its connections at the end of the run, mid-read: not news


@pytest.fixture(scope="module")
def server():
    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_counts_answers_and_latency(server):
    result = wrk.run(f"{server}/", connections=4, seconds=1, threads=2)
    assert result["requests"] > 0
    assert result["rps"] == pytest.approx(result["requests"] / result["seconds"], rel=0.01)
    assert result["socket_errors"] == 0
    assert result["non_2xx_3xx"] == 0
    latency = result["latency_us"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]


def test_error_answers_are_counted_apart_from_socket_errors(server):
    result = wrk.run(f"{server}/broken", connections=2, seconds=1, threads=1)
    assert result["non_2xx_3xx"] == result["requests"] > 0
    assert result["socket_errors"] == 0


def test_a_target_that_refuses_fails_with_wrks_message():
    # A port nothing listens on: wrk stops at the first refused connection.
    with pytest.raises(RuntimeError, match=r"unable to connect to 127\.0\.0\.1:9"):
        wrk.run("http://127.0.0.1:9/", connections=2, seconds=1, threads=1)


def test_threads_never_exceed_connections():
    assert "--threads=1" in wrk.command("http://x/", connections=1, seconds=1, threads=4)


def test_output_without_the_result_line_is_an_error():
    with pytest.raises(ValueError, match="no WRK_JSON line"):
        wrk.parse("Running 1s test @ http://x/\n")


def test_a_command_over_ssh_reaches_the_remote_shell_as_one_quoted_string():
    argv = ["sh", "-c", "command -v wrk >/dev/null || apt-get install -y wrk"]
    assert wrk.on(["ssh", "-o", "BatchMode=yes", "loadgen1"], argv) == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "loadgen1",
        "sh -c 'command -v wrk >/dev/null || apt-get install -y wrk'",
    ]
    # docker exec (or this machine) takes the words as they are
    assert wrk.on(["docker", "exec", "-i", "c"], argv) == ["docker", "exec", "-i", "c", *argv]
    assert wrk.on([], argv) == argv
