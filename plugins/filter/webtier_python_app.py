"""Thin Ansible wrapper: the app's environment (what it needs to reach its Redis and its
database, under what the inventory gives) is computed by webtier.configs.app_env, and the
host that runs a release's once-commands by webtier.configs.app_first_host, and how a
release command runs by webtier.configs.release_command, as the pyinfra engine and the
render command compute them."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

from webtier import configs, derive


def webtier_app_env(  # noqa: PLR0913, PLR0917 (a Jinja2 filter's arguments are positional)
    env, secret_env, redis_group, groups, hostvars, database_group="", database=""
):
    """{__python_app_env, __python_app_secret_env}: the two env files' contents."""
    values = {
        "python_app_env": dict(env),
        "python_app_secret_env": dict(secret_env),
        "python_app_redis_group": redis_group,
        "python_app_database_group": database_group,
        "python_app_database": database,
    }
    try:
        return configs.app_env(values, groups, hostvars)
    except (ValueError, KeyError) as error:
        raise AnsibleFilterError(str(error)) from None


def webtier_app_source(src):
    """The controller directory python_app_src names (webtier.derive.app_source)."""
    return derive.app_source(src, os.getcwd())


def webtier_app_first_host(name, groups, hostvars):
    """The host that runs a release's ``once`` commands (webtier.configs.app_first_host)."""
    return configs.app_first_host(name, groups, hostvars)


def webtier_release_command(command, name, user, release_dir, venv, env_dir):  # noqa: PLR0913, PLR0917 (a Jinja2 filter's arguments are positional)
    """The argv of one release command (webtier.configs.release_command)."""
    return configs.release_command(
        str(command), str(name), str(user), str(release_dir), str(venv), str(env_dir)
    )


class FilterModule:
    def filters(self):
        return {
            "webtier_app_env": webtier_app_env,
            "webtier_app_source": webtier_app_source,
            "webtier_app_first_host": webtier_app_first_host,
            "webtier_release_command": webtier_release_command,
        }
