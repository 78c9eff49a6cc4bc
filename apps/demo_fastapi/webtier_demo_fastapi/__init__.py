"""webtier's demo ASGI app (FastAPI): the Flask demo's endpoints, and a WebSocket.

- ``/``        cheap: no I/O, says which server answered;
- ``/healthz`` 200 when Redis takes a write, 503 within a fraction of a second when not;
- ``/counter`` increments a Redis counter and returns its value;
- ``/whoami``  the scheme and client address the app sees;
- ``/ws``      a WebSocket that echoes every message back.

Configuration from the environment, as the Flask demo's (see its docstring): with
Sentinel ``REDIS_SENTINELS``, ``REDIS_SENTINEL_SERVICE``, ``REDIS_SENTINEL_PASSWORD``,
``REDIS_USERNAME``, ``REDIS_PASSWORD``, ``REDIS_DB``, ``REDIS_SSL``; else ``REDIS_URL``
and ``REDIS_PASSWORD``; ``REDIS_KEY_PREFIX`` (every key starts with it);
``WEBTIER_SERVER``, ``WEBTIER_REDIS_TIMEOUT`` (seconds).
"""

from __future__ import annotations

import contextlib
import os
import socket

import redis.asyncio as redis
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError


def redis_client(timeout: float) -> redis.Redis:
    """The app's Redis, from the environment (see the module's docstring)."""
    common = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "health_check_interval": 30,
        # A pooled connection that Redis closed (a restart, a failover) fails on first
        # use: reconnect (through Sentinel: to the primary it names now) and send again,
        # once, at once.
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    }
    password = os.environ.get("REDIS_PASSWORD") or None
    sentinels = os.environ.get("REDIS_SENTINELS", "")
    if not sentinels:
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


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    timeout = float(os.environ.get("WEBTIER_REDIS_TIMEOUT", "0.5"))
    state = {"client": redis_client(timeout)}
    served_by = {"server": os.environ.get("WEBTIER_SERVER", "?"), "host": socket.gethostname()}
    # Every key under the prefix of the app's Redis user: it may reach no other.
    prefix = os.environ.get("REDIS_KEY_PREFIX", "")
    health_key = f"{prefix}healthz:{served_by['host']}"

    async def unavailable(exc: Exception) -> JSONResponse:
        # Start over with a new client, so the next request connects anew whatever
        # state the failure left the pool in.
        old, state["client"] = state["client"], redis_client(timeout)
        with contextlib.suppress(RedisError, OSError):  # dropped because it is broken
            await old.aclose()
        body = {"status": "redis unavailable", "error": type(exc).__name__, **served_by}
        return JSONResponse(body, status_code=503)

    @app.get("/")
    async def index():
        return {"app": "fastapi", **served_by}

    @app.get("/healthz")
    async def healthz():
        try:  # a write, not a PING: a replica answers PING but refuses writes
            await state["client"].set(health_key, "1", px=60000)
        except (RedisError, OSError) as exc:
            return await unavailable(exc)
        return {"status": "ok", "redis": "writable", **served_by}

    @app.get("/counter")
    async def counter():
        try:
            value = await state["client"].incr(f"{prefix}counter")
        except (RedisError, OSError) as exc:
            return await unavailable(exc)
        return {"counter": value, **served_by}

    @app.get("/whoami")
    async def whoami(request: Request):
        return {
            "scheme": request.url.scheme,
            "client": request.client.host if request.client else None,
            "x_real_ip": request.headers.get("x-real-ip"),
            "x_forwarded_for": request.headers.get("x-forwarded-for"),
            **served_by,
        }

    @app.websocket("/ws")
    async def echo(websocket: WebSocket):
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.send_text(await websocket.receive_text())

    return app
