"""What a user relies on after the gunicorn role served the demo apps."""

from __future__ import annotations

import json
import time

from conftest import UNIT, VARS, get, host_vars, load, main_pid, wait_for_new_workers


def test_service_is_active_and_notified_ready(host):
    service = host.service(UNIT)
    assert service.is_running
    assert service.is_enabled
    assert host.check_output(f"systemctl show -p Type --value {UNIT}") == "notify"


def test_worker_count_is_the_configured_one(host):
    want = host_vars(host).get("gunicorn_workers") or int(host.check_output("nproc"))
    workers = host.check_output(f"pgrep -P {main_pid(host)}").split()
    assert len(workers) == want


def test_workers_run_as_the_app_user(host):
    users = host.check_output(f"ps -o user= --ppid {main_pid(host)} -p {main_pid(host)}").split()
    assert set(users) == {"demo"}


def test_listen_backlog_is_the_configured_one(host):
    line = host.check_output("ss -ltnH 'sport = :8000'")
    assert int(line.split()[2]) == VARS["gunicorn_backlog"]


def test_app_answers_and_says_who_served(host):
    status, body, _ = get(host, "/")
    assert status == 200
    reply = json.loads(body)
    app = "fastapi" if host.backend.get_hostname().startswith("fastapi") else "flask"
    assert reply["app"] == app
    assert reply["server"] == f"gunicorn-{host_vars(host)['gunicorn_worker_class']}"


def test_redis_counter_moves(host):
    first = json.loads(get(host, "/counter")[1])["counter"]
    second = json.loads(get(host, "/counter")[1])["counter"]
    assert second == first + 1


def test_healthz_answers_503_fast_when_redis_is_down(host):
    status, body, _ = get(host, "/healthz")
    assert status == 200, body
    host.check_output("systemctl stop redis-server")
    try:
        status, body, seconds = get(host, "/healthz")
        assert status == 503, body
        assert seconds < 1.0
        assert get(host, "/counter")[0] == 503
    finally:
        host.check_output("systemctl start redis-server")
    # The app reconnects by itself: no restart of the app.
    deadline = time.monotonic() + 20
    while (reply := get(host, "/healthz"))[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert reply[0] == 200, reply
    # ... in every worker: none answers 503 on its first request after Redis is back
    # (each held a connection the restart closed).
    replies = [get(host, "/counter") for _ in range(20)]
    assert [r for r in replies if r[0] != 200] == []


LATE_REQUEST = """
import os, signal, socket, sys, time
conn = socket.create_connection(("127.0.0.1", 8000), timeout=10)
time.sleep(0.2)  # a worker has accepted it
os.kill(int(sys.argv[1]), signal.SIGHUP)
time.sleep(0.3)  # the worker that holds it is shutting down
conn.sendall(b"GET / HTTP/1.1\\r\\nHost: test\\r\\n\\r\\n")
print((conn.recv(100).split(b"\\r\\n")[0] or b"closed unread").decode())
"""


def test_reload_answers_a_request_already_on_its_way(host):
    """A connection an old worker accepted just before a reload, its request arriving
    as the worker shuts down, is answered.

    Under load, that is a request sent on a connection the worker took a moment
    before the signal. uvicorn closed such connections unread: 1 request in 3,349 lost
    during a reload (uvicorn issue 2757). Sending the request 0.3 s late makes the race
    certain instead of rare; the rendered config's post_worker_init spares the
    connection.
    """
    pid = main_pid(host)
    old = set(host.check_output(f"pgrep -P {pid}").split())
    out = host.check_output(f"python3 - {pid} <<'EOF'\n{LATE_REQUEST}\nEOF")
    assert out == "HTTP/1.1 200 OK"
    wait_for_new_workers(host, old, len(old))


def test_hup_under_load_loses_no_request(host):
    """A reload (HUP: new workers, old ones finish gracefully) during a bounded load.

    gthread and uvicorn workers each took connections in the moment after they were
    told to stop, then closed them unread: the rendered config's post_worker_init
    hooks close that race (before them: up to 11 of ~20,000 requests lost per reload).
    """
    pid = main_pid(host)
    old = set(host.check_output(f"pgrep -P {pid}").split())
    host.check_output(f"(sleep 1.5; systemctl reload {UNIT}) >/dev/null 2>&1 &")
    result = load(host, concurrency=16, seconds=5)
    print(f"HUP under load on {host.backend.get_hostname()}: {result}")
    # Every client was answered (no request rate asserted: on a busy machine the new
    # workers' boot may hold requests in the listen queue for most of the window).
    assert result["ok"] >= 16, result
    assert result["failed"] == 0, result
    wait_for_new_workers(host, old, len(old))
    assert main_pid(host) == pid, "the arbiter stayed; only workers were replaced"
    log = host.check_output(
        f"journalctl -u {UNIT} --no-pager -o cat | grep -c 'Handling signal: hup'"
    )
    assert int(log) >= 1
