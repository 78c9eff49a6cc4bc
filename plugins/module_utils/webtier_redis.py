"""Reach a Redis/Valkey server or Sentinel from the role's modules.

The credentials travel only as module arguments (``no_log``) and over the server's
socket: no ``redis-cli`` is spawned, so no password is in the argv or the environment
of any process on the host (``redis-cli -a`` shows it in ``ps``; ``REDISCLI_AUTH`` in
``/proc/PID/environ`` and in sudo's log). The client is Debian's python3-redis, which
the role installs beside the server.
"""

from __future__ import annotations

import hashlib
import json
import shlex

try:
    import redis
except ImportError:  # reported by connect(), as a module failure with the cause
    redis = None

CONNECTION_ARGS = {
    "socket": {"type": "path"},
    "host": {"type": "str", "default": "127.0.0.1"},
    "port": {"type": "int", "default": 6379},
    "user": {"type": "str"},
    "password": {"type": "str", "default": "", "no_log": True},
    "timeout": {"type": "float", "default": 5.0},
    "tls_ca_file": {"type": "path"},
}


def connect(module):
    """A client of the server the module's connection arguments name (not yet connected)."""
    if redis is None:
        module.fail_json(msg="python3-redis is missing on the host (the redis role installs it)")
    params = module.params
    where = (
        {"unix_socket_path": params["socket"]}
        if params["socket"]
        else {"host": params["host"], "port": params["port"]}
    )
    if params["tls_ca_file"]:
        # The chain is checked, not the name: the role reaches its own host by address.
        where |= {"ssl": True, "ssl_ca_certs": params["tls_ca_file"], "ssl_check_hostname": False}
    return redis.Redis(
        username=params["user"] or None,
        password=params["password"] or None,
        socket_timeout=params["timeout"],
        socket_connect_timeout=params["timeout"],
        decode_responses=True,
        **where,
    )


def plain(reply):
    """A reply as JSON-friendly data (sets and tuples as lists, bytes as text)."""
    if isinstance(reply, bytes):
        return reply.decode(errors="replace")
    if isinstance(reply, dict):
        return {plain(k): plain(v) for k, v in reply.items()}
    if isinstance(reply, (list, tuple, set)):
        return [plain(item) for item in reply]
    return reply


def call(client, *args):
    """(ok, reply) of one command; a refused or failed command comes back as its error text."""
    try:
        return True, plain(client.execute_command(*args))
    except redis.exceptions.RedisError as error:
        return False, f"{type(error).__name__}: {error}"


def parse(text):
    """{directive: [arguments, ...] per occurrence} of a Redis config file: what the
    server reads, whatever the file's comments, blank lines and quoting (CONFIG REWRITE
    quotes strings its own way)."""
    settings = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line)
        settings.setdefault(words[0].lower(), []).append(words[1:])
    return settings


def directives_digest(text):
    """A digest of :func:`parse`'s reading of a config file: two files that say the
    same have the same one, and it shows nothing of a password the file holds."""
    return hashlib.sha256(json.dumps(parse(text), sort_keys=True).encode()).hexdigest()
