"""Who reaches what in Redis, once: an app user's key prefix and its ACL rules.

Each app has a Redis user of its own (the redis role's ``redis_app_users``; the app's
hosts and its Celery workers share it). The user reaches the keys and the channels that
start with its prefix, and nothing else: not another app's keys, not Sentinel's
``__sentinel__:hello`` (a PUBLISH there can move the Sentinels' primary). The ACL file
(webtier.files.redis), the model's checks (webtier.model.schema) and the app's
environment (``REDIS_KEY_PREFIX``, webtier.files.app) read these two functions.
"""

from __future__ import annotations

#: The channel the Sentinels of a set talk on, through the data servers.
SENTINEL_HELLO = "__sentinel__:hello"
#: The patterns Celery subscribes to on database 0, after the app's prefix: its broadcast
#: channel (remote control: ping, inspect, what ``webtier_celery.py status`` asks), the
#: workers' gossip (``worker.#`` events) and a monitor's every event (``celery events``).
#: kombu subscribes with PSUBSCRIBE, and Redis matches a PSUBSCRIBE pattern literally
#: against a user's channel rules (``&demo:*`` does not let it PSUBSCRIBE
#: ``demo:/0.celery.pidbox``): so each is named as it is, beside the prefix's pattern.
#: (Measured: a worker with the prefix's pattern alone stops with "No permissions to
#: access a channel", ACL LOG naming ``<prefix>/0.celeryev/worker.*``.)
CELERY_PATTERNS = ("/0.celery.pidbox", "/0.celeryev/worker.*", "/0.celeryev/*")


def redis_app_prefix(name: str, prefix: str | None) -> str:
    """The prefix of an app user's keys and channels: the one it names, else its name
    and a colon (``demo`` -> ``demo:``); empty: none at all."""
    return f"{name}:" if prefix is None else str(prefix)


def redis_key_prefix(user: dict) -> str:
    """The prefix an app user's client puts before its keys (``REDIS_KEY_PREFIX``):
    its prefix, or none for an unrestricted user."""
    return "" if user.get("unrestricted") else redis_app_prefix(user["name"], user.get("prefix"))


def redis_app_rules(user: dict, commands: str) -> str:
    """The ACL rules of an app user (after ``user <name> on #<hash>``): its keys and
    channels, then its commands (its own, else the role's ``redis_app_commands``).
    ``unrestricted`` (a reason, the inventory's) gives every key and channel."""
    if user.get("unrestricted"):
        reach = "~* &*"
    else:
        prefix = redis_app_prefix(user["name"], user.get("prefix"))
        channels = " ".join(f"&{prefix}{pattern}" for pattern in ("*", *CELERY_PATTERNS))
        reach = f"~{prefix}* {channels}" if prefix else ""
    rules = user.get("commands") or commands
    return " ".join(part for part in ("resetkeys resetchannels", reach, "-@all", rules) if part)
