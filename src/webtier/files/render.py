"""Render the stack's templates with plain Jinja2, exactly as Ansible's template module does.

The templates under ``templates/`` use no Ansible-only filters, lookups or magic
variables, so Ansible, pyinfra and the unit tests render the very same file from the
same variables. The environment below mirrors the template module's defaults:
``trim_blocks`` on, ``lstrip_blocks`` off, trailing newline kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from webtier import TEMPLATES


def environment(templates: Path = TEMPLATES) -> jinja2.Environment:
    """A Jinja2 environment over ``templates`` that fails on any undefined variable."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        autoescape=False,  # config files, not HTML
    )


def render(template: str, variables: Mapping[str, Any], templates: Path = TEMPLATES) -> str:
    """Render ``template`` (a path relative to ``templates``) with ``variables``."""
    return environment(templates).get_template(template).render(**variables)
