"""Thin Ansible wrapper: the app's environment (what it needs to reach its Redis, under
what the inventory gives) is computed by webtier.configs.app_env, as the pyinfra engine
and the render command compute it."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

from webtier import configs, derive


def webtier_app_env(env, secret_env, redis_group, groups, hostvars):
    """{__python_app_env, __python_app_secret_env}: the two env files' contents."""
    values = {
        "python_app_env": dict(env),
        "python_app_secret_env": dict(secret_env),
        "python_app_redis_group": redis_group,
    }
    try:
        return configs.app_env(values, groups, hostvars)
    except (ValueError, KeyError) as error:
        raise AnsibleFilterError(str(error)) from None


def webtier_app_source(src):
    """The controller directory python_app_src names (webtier.derive.app_source)."""
    return derive.app_source(src, os.getcwd())


class FilterModule:
    def filters(self):
        return {"webtier_app_env": webtier_app_env, "webtier_app_source": webtier_app_source}
