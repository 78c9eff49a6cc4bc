"""webtier's demo ASGI app (FastAPI), the same three endpoints as the Flask demo.

- ``/``        cheap: no I/O, says which server answered;
- ``/healthz`` 200 when Redis answers PING, 503 within a fraction of a second when not;
- ``/counter`` increments a Redis counter and returns its value.

Configuration from the environment: ``REDIS_URL``, ``REDIS_PASSWORD``, ``WEBTIER_SERVER``,
``WEBTIER_REDIS_TIMEOUT`` (seconds).
"""

from __future__ import annotations

import contextlib
import os
import socket

import redis.asyncio as redis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    timeout = float(os.environ.get("WEBTIER_REDIS_TIMEOUT", "0.5"))

    def connect() -> redis.Redis:
        return redis.Redis.from_url(
            os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            # A password in the URL wins; REDIS_PASSWORD needs no URL-encoding.
            password=os.environ.get("REDIS_PASSWORD") or None,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            health_check_interval=30,
            # A pooled connection that Redis closed (a restart) fails on first use:
            # reconnect and send again, once, at once. Only a dropped connection is
            # retried, so a Redis that does not answer still costs one timeout.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )

    state = {"client": connect()}
    served_by = {"server": os.environ.get("WEBTIER_SERVER", "?"), "host": socket.gethostname()}

    async def unavailable(exc: Exception) -> JSONResponse:
        # Start over with a new client, so the next request connects anew whatever
        # state the failure left the pool in.
        old, state["client"] = state["client"], connect()
        with contextlib.suppress(RedisError, OSError):  # dropped because it is broken
            await old.aclose()
        body = {"status": "redis unavailable", "error": type(exc).__name__, **served_by}
        return JSONResponse(body, status_code=503)

    @app.get("/")
    async def index():
        return {"app": "fastapi", **served_by}

    @app.get("/healthz")
    async def healthz():
        try:
            await state["client"].ping()
        except (RedisError, OSError) as exc:
            return await unavailable(exc)
        return {"status": "ok", **served_by}

    @app.get("/counter")
    async def counter():
        try:
            value = await state["client"].incr("webtier:counter")
        except (RedisError, OSError) as exc:
            return await unavailable(exc)
        return {"counter": value, **served_by}

    return app
