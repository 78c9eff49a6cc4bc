"""webtier's demo WSGI app (Flask).

- ``/``        cheap: no I/O, says which server answered;
- ``/healthz`` 200 when Redis answers PING, 503 within a fraction of a second when not;
- ``/counter`` increments a Redis counter and returns its value.

Configuration comes from the environment (the env file the service reads):
``REDIS_URL`` (``redis://user@host:port/db``), ``REDIS_PASSWORD`` (or in the URL,
URL-encoded), ``WEBTIER_SERVER`` (a label
for the server kind, e.g. ``gunicorn-gthread``), ``WEBTIER_REDIS_TIMEOUT`` (seconds).
"""

from __future__ import annotations

import os
import socket

import redis
from flask import Flask, jsonify
from redis.backoff import NoBackoff
from redis.retry import Retry


def create_app() -> Flask:
    app = Flask(__name__)
    timeout = float(os.environ.get("WEBTIER_REDIS_TIMEOUT", "0.5"))
    client = redis.Redis.from_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        # A password in the URL wins; REDIS_PASSWORD needs no URL-encoding.
        password=os.environ.get("REDIS_PASSWORD") or None,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=30,
        # A pooled connection that Redis closed (a restart) fails on first use:
        # reconnect and send again, once, at once. Only a dropped connection is
        # retried, so a Redis that does not answer still costs one timeout.
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )
    served_by = {"server": os.environ.get("WEBTIER_SERVER", "?"), "host": socket.gethostname()}

    @app.get("/")
    def index():
        return jsonify(app="flask", **served_by)

    @app.get("/healthz")
    def healthz():
        try:
            client.ping()
        except redis.RedisError as exc:
            return jsonify(status="redis unavailable", error=type(exc).__name__, **served_by), 503
        return jsonify(status="ok", **served_by)

    @app.get("/counter")
    def counter():
        try:
            value = client.incr("webtier:counter")
        except redis.RedisError as exc:
            return jsonify(status="redis unavailable", error=type(exc).__name__, **served_by), 503
        return jsonify(counter=value, **served_by)

    return app
