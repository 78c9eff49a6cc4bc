"""webtier's demo WSGI app (Flask).

- ``/``        cheap: no I/O, says which server answered;
- ``/healthz`` 200 when Redis takes a write, 503 within a fraction of a second when
  not (down, or a read-only replica after a failover);
- ``/counter`` increments a Redis counter and returns its value;
- ``/whoami``  the scheme and client address the app sees (the forwarded headers it
  was given, as the app server trusted them);
- ``/work?n=N`` CPU-bound work (``tasks.burn``): ``mode=inline`` computes it in the web
  worker (200), ``mode=queue`` enqueues it for the worker tier (202, ``Location`` the
  job's URL); the default is ``WEBTIER_WORK_MODE`` (inline);
- ``/jobs/<id>`` a queued job: 202 while it waits or runs, 200 with its result;
- ``/queue``   the work queue's depth and the tasks workers hold unacknowledged.

Configuration comes from the environment (the env files the service reads, which the
python_app role derives from the inventory's Redis hosts, python_app_redis_group):

- a Redis set watched by Sentinel: ``REDIS_SENTINELS`` (``host:port,...``),
  ``REDIS_SENTINEL_SERVICE``, ``REDIS_SENTINEL_PASSWORD``, ``REDIS_USERNAME``,
  ``REDIS_PASSWORD``, ``REDIS_DB``, ``REDIS_SSL``: the client asks the Sentinels where
  the primary is, and asks again when it fails, so it follows a failover;
- one Redis: ``REDIS_URL`` (``redis://user@host:port/db``) and ``REDIS_PASSWORD``;

``REDIS_KEY_PREFIX``, the prefix of every key the app's Redis user may reach; and
``WEBTIER_SERVER`` (a label for the server kind, e.g. ``gunicorn-gthread``),
``WEBTIER_REDIS_TIMEOUT`` (seconds).
"""

from __future__ import annotations

import os
import socket

import redis
from flask import Flask, jsonify, request, url_for
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel


def redis_client(timeout: float) -> redis.Redis:
    """The app's Redis, from the environment (see the module's docstring)."""
    common = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "health_check_interval": 30,
        # A pooled connection that Redis closed (a restart, a failover) fails on first
        # use: reconnect (through Sentinel: to the primary it names now) and send again,
        # once, at once. Only a dropped connection is retried, so a Redis that does not
        # answer still costs one timeout.
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    }
    password = os.environ.get("REDIS_PASSWORD") or None
    sentinels = os.environ.get("REDIS_SENTINELS", "")
    if not sentinels:
        # A password in the URL wins; REDIS_PASSWORD needs no URL-encoding.
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        return redis.Redis.from_url(url, password=password, **common)
    ssl = os.environ.get("REDIS_SSL", "").lower() == "true"
    pairs = (a.strip().rpartition(":") for a in sentinels.split(","))
    addresses = [(h, int(p)) for h, _, p in pairs]
    sentinel = Sentinel(
        addresses,
        sentinel_kwargs={
            "password": os.environ.get("REDIS_SENTINEL_PASSWORD") or None,
            "socket_connect_timeout": timeout,
            "socket_timeout": timeout,
            "ssl": ssl,
        },
    )
    return sentinel.master_for(
        os.environ.get("REDIS_SENTINEL_SERVICE", "webtier"),
        username=os.environ.get("REDIS_USERNAME") or None,
        password=password,
        db=int(os.environ.get("REDIS_DB", "0")),
        ssl=ssl,
        **common,
    )


def create_app() -> Flask:
    app = Flask(__name__)
    client = redis_client(float(os.environ.get("WEBTIER_REDIS_TIMEOUT", "0.5")))
    served_by = {"server": os.environ.get("WEBTIER_SERVER", "?"), "host": socket.gethostname()}
    # Every key under the prefix of the app's Redis user: it may reach no other.
    prefix = os.environ.get("REDIS_KEY_PREFIX", "")
    health_key = f"{prefix}healthz:{served_by['host']}"

    def unavailable(exc: Exception):
        return jsonify(status="redis unavailable", error=type(exc).__name__, **served_by), 503

    @app.get("/")
    def index():
        return jsonify(app="flask", **served_by)

    @app.get("/healthz")
    def healthz():
        try:  # a write, not a PING: a replica answers PING but refuses writes
            client.set(health_key, "1", px=60000)
        except redis.RedisError as exc:
            return unavailable(exc)
        return jsonify(status="ok", redis="writable", **served_by)

    @app.get("/counter")
    def counter():
        try:
            value = client.incr(f"{prefix}counter")
        except redis.RedisError as exc:
            return unavailable(exc)
        return jsonify(counter=value, **served_by)

    @app.get("/work")
    def work():
        from webtier_demo_flask import tasks  # noqa: PLC0415 (Celery only where it is used)

        n = min(max(request.args.get("n", 100_000, type=int), 0), 10_000_000)
        mode = request.args.get("mode", os.environ.get("WEBTIER_WORK_MODE", "inline"))
        if mode != "queue":
            return jsonify(n=n, value=tasks.burn(n), mode="inline", **served_by)
        job = tasks.work.delay(n)
        location = url_for("job", job_id=job.id)
        return (
            jsonify(job=job.id, url=location, mode="queue", **served_by),
            202,
            {"Location": location},
        )

    @app.get("/jobs/<job_id>")
    def job(job_id: str):
        from webtier_demo_flask import tasks  # noqa: PLC0415

        result = tasks.celery.AsyncResult(job_id)
        if not result.ready():
            return jsonify(job=job_id, state=result.state), 202
        if result.failed():
            return jsonify(job=job_id, state=result.state, error=repr(result.result)), 500
        return jsonify(job=job_id, state=result.state, result=result.result)

    @app.get("/queue")
    def queue():
        from webtier_demo_flask import tasks  # noqa: PLC0415

        try:
            depth, unacked = client.llen(tasks.QUEUE), client.hlen("unacked")
        except redis.RedisError as exc:
            return unavailable(exc)
        return jsonify(queue=tasks.QUEUE, depth=depth, unacked=unacked, **served_by)

    @app.get("/whoami")
    def whoami():
        return jsonify(
            scheme=request.scheme,
            client=request.remote_addr,
            x_real_ip=request.headers.get("X-Real-IP"),
            x_forwarded_for=request.headers.get("X-Forwarded-For"),
            **served_by,
        )

    return app
