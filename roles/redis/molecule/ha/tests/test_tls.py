"""Redis TLS on the Debian 13 set: clients, replicas and Sentinels reach the servers
over TLS only, and an app verifies the server (the failover over TLS is test_ha.py's)."""

from __future__ import annotations

import pytest
from conftest import CA, SETS, TLS_SET, info, primary_by_sentinel, redis, secret

MEMBERS = SETS[TLS_SET]
# What an app does (python3-redis, the client the demo apps use): TLS, the server's
# certificate checked against the CA and against the name it is reached by.
APP = """
import os, sys, redis
host, ca = sys.argv[1], sys.argv[2]
client = redis.Redis(host=host, port=6379, username="app", password=os.environ["APP_PASSWORD"],
                     ssl=True, ssl_ca_certs=ca, ssl_check_hostname=True, socket_timeout=5)
print(client.incr("webtier:tls"))
"""


def app_client(host, target: str, ca: str = CA):
    return host.run(f"APP_PASSWORD={secret('app')} python3 -c '{APP}' {target} {ca}")


@pytest.fixture(scope="module")
def primary(instances) -> str:
    return primary_by_sentinel(instances[MEMBERS[0]])


def test_an_app_writes_over_tls_and_verifies_the_server(instances, primary):
    client = next(name for name in MEMBERS if name != primary)
    reply = app_client(instances[client], primary)
    assert reply.rc == 0, reply.stderr
    assert int(reply.stdout) >= 1


def test_an_app_refuses_a_server_its_ca_did_not_sign(instances, primary):
    client = next(name for name in MEMBERS if name != primary)
    reply = app_client(instances[client], primary, ca="/etc/ssl/certs/ca-certificates.crt")
    assert reply.rc != 0
    assert "certificate verify failed" in reply.stderr


@pytest.mark.parametrize("port", [6379, 26379])
def test_a_plaintext_client_is_refused(instances, primary, port):
    client = instances[next(name for name in MEMBERS if name != primary)]
    reply = client.run(f"timeout 5 redis-cli -h {primary} -p {port} PING")
    assert "PONG" not in reply.stdout
    assert "NOAUTH" not in reply.stdout + reply.stderr  # no plaintext answer at all


def test_replicas_follow_the_primary_over_tls(instances, primary):
    for name in MEMBERS:
        if name == primary:
            continue
        replication = info(instances[name], "replication")
        assert replication["master_link_status"] == "up", replication
        assert redis(instances[name], "CONFIG", "GET", "tls-replication").split() == [
            "tls-replication",
            "yes",
        ]
    # The primary's plaintext port is closed, so an up link is a TLS link.
    assert redis(instances[primary], "CONFIG", "GET", "port").split() == ["port", "0"]
    assert redis(instances[primary], "CONFIG", "GET", "tls-port").split() == ["tls-port", "6379"]
