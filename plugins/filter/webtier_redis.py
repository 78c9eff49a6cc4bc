"""Thin Ansible wrapper: the prefix of an app user's Redis keys
(webtier.model.access.redis_key_prefix), as the app's environment gets it."""

from __future__ import annotations

from webtier.model.access import redis_key_prefix


def webtier_redis_key_prefix(user):
    """The key prefix of one of redis_app_users (webtier.model.access.redis_key_prefix)."""
    return redis_key_prefix(dict(user))


class FilterModule:
    def filters(self):
        return {"webtier_redis_key_prefix": webtier_redis_key_prefix}
