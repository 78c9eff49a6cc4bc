"""Settings of webtier's demo Django project, all from the environment python_app
writes (/etc/webtier/apps/<app>.env and .secret.env):

- ``DATABASE_URL`` (postgresql://user@host:port/name, through PgBouncer) and
  ``DATABASE_PASSWORD``: the database tier (python_app_database_group);
- ``REDIS_SENTINELS`` ... or ``REDIS_URL`` (python_app_redis_group): the cache and the
  sessions, in Redis;
- ``DJANGO_SECRET_KEY`` (secret), ``DJANGO_ALLOWED_HOSTS`` (comma-separated, default *).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
# A release's commands may write <release>/static (python_app_release_commands):
# collectstatic puts the files there, next to the source (<release>/src).
STATIC_ROOT = BASE_DIR.parent / "static"
STATIC_URL = "/static/"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
# The load balancer sends X-Content-Type-Options with its other security headers.
SECURE_CONTENT_TYPE_NOSNIFF = False
DEBUG = False
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",")]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "notes",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files with far-future cache headers (hashed names), which the load
    # balancer caches: the release and its static files go out together.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "demo_django.urls"
WSGI_APPLICATION = "demo_django.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]
STORAGES = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def _hosts(netloc: str) -> tuple[str, str, str]:
    """The user, hosts and ports of a URL's netloc, libpq's multi-host form included
    (demo@db1:6432,db2:6432: Django hands both comma-separated lists to libpq)."""
    user, _, hosts = netloc.rpartition("@")
    names, ports = [], []
    for entry in hosts.split(","):
        name, colon, port = entry.rpartition(":")
        names.append(name if colon else port)
        ports.append(port if colon else "5432")
    return unquote(user), ",".join(names), ",".join(ports)


def _database() -> dict:
    url = urlsplit(os.environ.get("DATABASE_URL", "postgresql://demo@127.0.0.1:5432/demo"))
    user, hosts, ports = _hosts(url.netloc)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": url.path.lstrip("/"),
        "USER": user,
        "PASSWORD": os.environ.get("DATABASE_PASSWORD", ""),
        "HOST": hosts,
        "PORT": ports,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # Transaction pooling: a server-side cursor would outlive its transaction.
        "DISABLE_SERVER_SIDE_CURSORS": True,
        # libpq's own connection parameters: the URL's query (target_session_attrs=
        # read-write with a replicated set, sslmode=verify-full&sslrootcert=... with the
        # tier's TLS) over two of this app's. A database host that is gone answers
        # nothing (no reset): a connection to it is given up after 2 s (then libpq tries
        # the next host), and a kept connection whose data stays unacknowledged for 3 s
        # is closed (Django then connects again), rather than hanging for the kernel's
        # retransmissions (minutes).
        "OPTIONS": {
            "connect_timeout": 2,
            "tcp_user_timeout": 3000,
            **dict(parse_qsl(url.query)),
        },
    }


DATABASES = {"default": _database()}
CACHES = {
    "default": {
        "BACKEND": "demo_django.redis_cache.EnvironmentRedisCache",
        "LOCATION": "",
        # Django writes <KEY_PREFIX>:<version>:<key>: under the prefix of the app's Redis
        # user (REDIS_KEY_PREFIX, "notes:"), the only keys it may reach.
        "KEY_PREFIX": os.environ.get("REDIS_KEY_PREFIX", "demo_django:").rstrip(":"),
        "TIMEOUT": 300,
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
