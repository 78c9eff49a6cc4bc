"""Thin Ansible wrappers: the host that runs a release's once-commands
(webtier.files.app.app_first_host) and how a release command runs
(webtier.files.app.release_command), as the pyinfra engine computes them. (The app's
environment files: the role_files action.)"""

from __future__ import annotations

import os

from webtier.files.app import app_first_host, release_command
from webtier.model import derive


def webtier_app_source(src):
    """The controller directory python_app_src names (webtier.model.derive.app_source)."""
    return derive.app_source(src, os.getcwd())


def webtier_app_first_host(name, groups, hostvars):
    """The host that runs a release's ``once`` commands (webtier.files.app.app_first_host)."""
    return app_first_host(name, groups, hostvars)


def webtier_release_command(command, name, user, release_dir, venv, env_dir):  # noqa: PLR0913, PLR0917 (a Jinja2 filter's arguments are positional)
    """The argv of one release command (webtier.files.app.release_command)."""
    return release_command(
        str(command), str(name), str(user), str(release_dir), str(venv), str(env_dir)
    )


class FilterModule:
    def filters(self):
        return {
            "webtier_app_source": webtier_app_source,
            "webtier_app_first_host": webtier_app_first_host,
            "webtier_release_command": webtier_release_command,
        }
