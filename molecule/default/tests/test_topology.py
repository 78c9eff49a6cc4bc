"""The production topology, live: the apps trust only their load balancers, the load
balancer sees the client behind a fronting one, WebSockets and HTTP/2 pass it, one
upstream of two Gunicorn hosts (gthread and sync) loses one under load, and the apps
follow a Redis failover under load without restarting. Shared with the pyinfra
scenario, which has one Gunicorn host per upstream and one Redis: the tests that need
the Ansible scenario's topology skip there. The failover runs last (it moves the
primary)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
from collections import Counter

import pytest
import websockets
import yaml
from conftest import ROOT, get
from scenario import flat_output, run_playbook, run_probe
from test_stack import flask_kinds

# The topology these need is the Ansible scenario's (the pyinfra one has one Gunicorn
# host per upstream and one Redis, as pyinfra converges no Sentinel).
ANSIBLE_SCENARIO = pytest.mark.skipif(
    os.environ.get("MOLECULE_SCENARIO_NAME") == "pyinfra", reason="the Ansible scenario's hosts"
)


def address(host) -> str:
    """The host's address on the scenario's network (the controller reaches it)."""
    return host.check_output("hostname -I").split()[0]


# --- forwarded headers -------------------------------------------------------------


def client_seen(body: dict) -> str:
    """The client address the app was given: uWSGI's REMOTE_ADDR (a uwsgi variable nginx
    sets), Gunicorn's X-Real-IP header (its peer is the load balancer)."""
    return body["client"] if body["server"] == "uwsgi" else body["x_real_ip"]


def seen_by_each_server(instances, url: str, field: str, *headers: str) -> dict:
    """``field`` of /whoami's answer, by the Flask site's server kind that gave it: GETs
    of ``url`` from lb1 until every kind has answered (or 60 tries)."""
    lb, seen = instances["lb1"], {}
    for _ in range(60):
        status, body = get(lb, url, *headers)
        if status == 200:
            seen.setdefault(body["server"], body[field])
        if set(seen) == flask_kinds(instances):
            break
        time.sleep(0.2)  # the location's rate limit: 5/s per client
    return seen


def test_https_through_the_load_balancer_reaches_every_app_server_as_https(instances):
    seen = seen_by_each_server(instances, "https://127.0.0.1/whoami", "scheme")
    assert seen == dict.fromkeys(flask_kinds(instances), "https"), seen


def test_a_forged_forwarded_proto_is_ignored(instances):
    """Over plain HTTP a client's X-Forwarded-Proto is replaced by the load balancer's
    own; sent to Gunicorn by anything but a load balancer (or the host itself), it is
    not believed."""
    status, body = get(instances["lb1"], "http://127.0.0.1:8090/whoami", "X-Forwarded-Proto: https")
    assert (status, body["scheme"]) == (200, "http"), body
    app1 = instances["app1"]
    own = address(app1)
    forged = "X-Forwarded-Proto: https"
    assert get(app1, f"http://{own}:8000/whoami", forged)[1]["scheme"] == "http"
    assert get(app1, "http://127.0.0.1:8000/whoami", forged)[1]["scheme"] == "https"


def test_a_forged_real_ip_reaches_no_app_server(instances):
    """A client's own X-Real-IP is replaced by the load balancer's, for Gunicorn (a
    header) and for uWSGI (the HTTP_X_REAL_IP variable nginx sets) alike."""
    forged = "X-Real-IP: 198.51.100.66"
    seen = seen_by_each_server(instances, "http://127.0.0.1/whoami", "x_real_ip", forged)
    assert seen == dict.fromkeys(flask_kinds(instances), "127.0.0.1"), seen


def test_behind_a_fronting_load_balancer_limits_and_logs_see_the_client(instances):
    """The sandbox trusts lb1's loopback as a load balancer in front (nginx_real_ip_from):
    its X-Forwarded-For names the client. Each client has its own rate limit, the log
    names it; another host's X-Forwarded-For is ignored."""
    lb = instances["lb1"]
    status, body = get(lb, "http://127.0.0.1/whoami", "X-Forwarded-For: 203.0.113.7")
    assert (status, client_seen(body)) == (200, "203.0.113.7"), body
    time.sleep(1.5)  # the access log's buffer is flushed every second
    last = lb.check_output("tail -n 50 /var/log/nginx/access.log")
    assert '"remote_addr":"203.0.113.7"' in last
    # 20 requests in one go from inside lb1 (one command per request through the
    # container engine can be slower than 5/s on a busy machine).
    burst = lb.check_output(
        "for i in $(seq 20); do curl -s -o /dev/null -w '%{http_code}\\n' "
        "-H 'X-Forwarded-For: 203.0.113.20' http://127.0.0.1/whoami; done"
    )
    statuses = Counter(int(code) for code in burst.split())
    assert statuses[429] > 0, statuses  # this client is over its 5/s (burst 5)
    status, _ = get(lb, "http://127.0.0.1/whoami", "X-Forwarded-For: 203.0.113.21")
    assert status == 200  # the next client is not
    other = instances["redis1"]
    status, body = get(other, "http://lb1/whoami", "X-Forwarded-For: 203.0.113.9")
    assert status == 200
    assert client_seen(body) == address(other), body


# --- WebSockets and HTTP/2 -----------------------------------------------------------


def test_a_websocket_echo_passes_the_load_balancer(instances):
    url = f"ws://{address(instances['lb1'])}:8090/ws"

    async def talk() -> list[str]:
        async with websockets.connect(url, open_timeout=10) as ws:
            answers = []
            for text in ("one", "two", "three"):
                await ws.send(text)
                answers.append(await asyncio.wait_for(ws.recv(), 10))
            return answers

    assert asyncio.run(talk()) == ["one", "two", "three"]


def test_http2_over_tls_serves_a_thousand_streams_without_an_error(instances):
    lb = address(instances["lb1"])
    out = subprocess.run(
        ["h2load", "-n", "1000", "-c", "10", "-m", "100", f"https://{lb}/"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    print(out)
    assert "Application protocol: h2" in out, out
    assert re.search(
        r"requests: 1000 total, 1000 started, 1000 done, 1000 succeeded, 0 failed, 0 errored", out
    ), out
    assert re.search(r"status codes: 1000 2xx", out), out


# --- two Gunicorn hosts in one upstream -----------------------------------------------


def unit_state(host, unit: str) -> tuple[str, str]:
    return (
        host.check_output(f"systemctl show -p MainPID --value {unit}"),
        host.check_output(f"systemctl show -p NRestarts --value {unit}"),
    )


@ANSIBLE_SCENARIO
def test_the_sync_worker_serves_and_one_of_two_gunicorn_hosts_may_stop(instances):
    app4 = instances["app4"]
    assert app4.check_output("grep -c '^worker_class = \"sync\"' /etc/gunicorn/demo.conf.py") == "1"
    stopper = threading.Timer(2, lambda: app4.run("systemctl stop gunicorn-demo"))
    stopper.start()
    try:
        load = run_probe(instances["lb1"], "http", "127.0.0.1", 80, "/", 8, 8)
    finally:
        stopper.join()
        app4.run("systemctl start gunicorn-demo")
    print(f"app4 stopped under load: {load}")
    assert load["ok"] >= 8, load  # every client answered (no request rate asserted)
    assert load["failed"] == 0, load
    assert app4.service("gunicorn-demo").is_running


# --- Redis failover under load ---------------------------------------------------------


REDIS = ("redis1", "redis2", "redis3")
SECRETS = yaml.safe_load((ROOT / "inventory/sandbox/group_vars/all/secrets.yml").read_text())


def sentinel(instances, *command: str) -> list[str]:
    """A Sentinel's answer to ``command``, one line per value."""
    return (
        instances["redis3"]
        .check_output(
            "REDISCLI_AUTH=%s redis-cli -p 26379 --no-auth-warning " + " ".join(command),
            SECRETS["redis_sentinel_password"],
        )
        .split()
    )


def primary(instances) -> str:
    """The primary's host, as the Sentinels say."""
    return sentinel(instances, "SENTINEL", "get-master-addr-by-name", "webtier")[0]


def replicating(instances, host: str, timeout: float = 60) -> bool:
    """Whether ``host`` is, within ``timeout``, a replica the Sentinels see linked."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        values = sentinel(instances, "SENTINEL", "replicas", "webtier")
        fields: list[dict[str, str]] = []  # one mapping per replica, from its pairs
        for key, value in zip(values[::2], values[1::2], strict=False):
            if key == "name":
                fields.append({})
            fields[-1][key] = value
        if any(
            (f.get("ip"), f.get("flags"), f.get("master-link-status")) == (host, "slave", "ok")
            for f in fields
        ):
            return True
        time.sleep(1)
    return False


@ANSIBLE_SCENARIO
def test_the_apps_follow_a_redis_failover_under_load_without_restarting(instances):
    apps = {
        "app1": "gunicorn-demo",
        "app2": "uwsgi-demo",
        "app3": "gunicorn-demo",
        "app4": "gunicorn-demo",
    }
    before = {name: unit_state(instances[name], unit) for name, unit in apps.items()}
    old = primary(instances)
    lb = instances["lb1"]
    loads: dict[int, dict] = {}  # port -> the probe's counts, both sites at once

    def probe(port: int, clients: int) -> None:
        loads[port] = run_probe(lb, "http", "127.0.0.1", port, "/counter", clients, 25)

    stopper = threading.Timer(3, lambda: instances[old].run("systemctl stop redis-server"))
    both = [threading.Thread(target=probe, args=args) for args in ((80, 6), (8090, 2))]
    stopper.start()
    try:
        for thread in both:
            thread.start()
        for thread in both:
            thread.join()
    finally:
        stopper.join()
    new = primary(instances)
    after = run_probe(lb, "http", "127.0.0.1", 80, "/counter", 6, 5)
    print(f"failover {old} -> {new}: {loads}; the next 5 s: {after}")
    assert new != old
    # Sentinel's down-after (3 s) plus its election and the promotion.
    assert max(load["failing_s"] for load in loads.values()) < 15, loads
    assert after["failed"] == 0, after  # every request answered again
    after = {name: unit_state(instances[name], unit) for name, unit in apps.items()}
    assert after == before  # no app process restarted
    # The old primary comes back as a replica of the new one, and site.yml keeps it so.
    instances[old].run("systemctl start redis-server")
    assert replicating(instances, old)  # Sentinel turned it into a replica
    redis_pids = {name: unit_state(instances[name], "redis-server") for name in REDIS}
    # Sentinel rewrote the servers' files in its own format: the directives are the
    # role's, so nothing changes and nothing restarts.
    proc = run_playbook(ROOT / "molecule/default/converge.yml", timeout=1200)
    out = flat_output(proc)
    assert proc.returncode == 0, out[-3000:]
    # each task that changed a host, with what it said (ok: lines may come first)
    changed = re.findall(r"TASK \[([^\]]+)\] \*+ ((?:(?!TASK \[).)*?changed: \[[^\]]+\])", out)
    print(f"site.yml after the failover: changed {changed}")
    assert not re.search(r"changed=[1-9]", out), changed
    assert {name: unit_state(instances[name], "redis-server") for name in REDIS} == redis_pids
    assert primary(instances) == new
    assert get(instances["lb1"], "http://127.0.0.1/counter")[0] == 200
