"""Django's own Redis cache, with the client built from the environment python_app writes:
through Redis Sentinel (``REDIS_SENTINELS``, so a failover is followed) or at
``REDIS_URL``, as the user ``REDIS_USERNAME`` with ``REDIS_PASSWORD``. Django's backend
takes one URL and knows no Sentinel; this replaces only how it gets its client."""

from __future__ import annotations

import os

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.sentinel import Sentinel


def redis_client(timeout: float = 0.5) -> redis.Redis:
    common = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    password = os.environ.get("REDIS_PASSWORD") or None
    sentinels = os.environ.get("REDIS_SENTINELS", "")
    if not sentinels:
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        return redis.Redis.from_url(url, password=password, **common)
    pairs = (a.strip().rpartition(":") for a in sentinels.split(","))
    sentinel = Sentinel(
        [(h, int(p)) for h, _, p in pairs],
        sentinel_kwargs={"password": os.environ.get("REDIS_SENTINEL_PASSWORD") or None, **common},
    )
    return sentinel.master_for(
        os.environ.get("REDIS_SENTINEL_SERVICE", "webtier"),
        username=os.environ.get("REDIS_USERNAME") or None,
        password=password,
        db=int(os.environ.get("REDIS_DB", "0")),
        **common,
    )


class _Client(RedisCacheClient):
    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._redis = redis_client(float(os.environ.get("WEBTIER_REDIS_TIMEOUT", "0.5")))

    def get_client(self, key=None, *, write=False):
        return self._redis


class EnvironmentRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _Client
