"""This project's own detect-secrets plugins (loaded by path from .secrets.baseline).

detect-secrets' stock plugins find known token formats, private keys (PGP ones too),
high-entropy strings and ``user:password@`` URLs. What they miss in a stack like this
one: a password in a URL with no user (``redis://:pw@host``), and values of keys whose
name says secret but is not in its keyword list (``requirepass``, ``masterauth``,
``redis_pass``, ``api-key``, ``auth-pass``) in YAML, .env, .ini, .json and .conf files.
A value is a literal unless it is a reference: ``{{ ... }}``, ``!vault``, ``$VAR``,
``<placeholder>``, a ``***`` mask, or empty. The module holds detect-secrets plugin
classes only, since detect-secrets registers every plugin class a plugin file holds.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from pathlib import PurePath

from detect_secrets.plugins.base import BasePlugin

SECRET_KEY = (
    r"[A-Za-z0-9_.-]*(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|"
    r"private[_-]?key|masterauth|requirepass|auth[_-]?pass)[A-Za-z0-9_.-]*"
)
# A literal value: what a reference cannot start with, up to where the value ends.
LITERAL = r"""(?!\{\{|!vault|\$|<|%\(|\*\*\*|[>|][-+]?\s*$)([^\s"',;{}#]+)"""


# Files that hold settings (code and prose are left to detect-secrets' keyword plugin).
CONFIG_SUFFIXES = {".yml", ".yaml", ".json", ".ini", ".cfg", ".conf", ".env", ".toml", ".j2"}


class SecretNamedValue(BasePlugin):
    """A secret-named key given a literal value in a settings file (``key: v``,
    ``export KEY=v``, ``"key": "v"``, ``requirepass v``, ``sentinel auth-pass NAME v``)."""

    secret_type = "Secret-named key with a literal value"
    patterns = (
        # A key where keys start: the line's start (after '- ' or 'export '), or '{' or ','.
        re.compile(
            rf"""(?i)(?:^\s*(?:-\s+|export\s+)?|[{{,]\s*)["']?{SECRET_KEY}["']?\s*[:=]\s*["']?"""
            rf"{LITERAL}"
        ),
        re.compile(rf"(?i)^\s*(?:requirepass|masterauth)\s+[\"']?{LITERAL}"),
        re.compile(
            rf"(?i)^\s*sentinel\s+auth-pass\s+(?:\{{\{{[^}}]*\}}\}}|[^\s{{]\S*)\s+[\"']?{LITERAL}"
        ),
    )
    # Values that name a type or a state, not a secret (argument specs, YAML schemas).
    words = frozenset(
        {"str", "string", "bool", "true", "false", "null", "none", "required", "path"}
    )

    def analyze_line(self, filename: str, line: str, *args, **kwargs):
        path = PurePath(filename)
        if path.suffix in CONFIG_SUFFIXES or path.name.startswith(".env"):
            return super().analyze_line(filename, line, *args, **kwargs)
        return set()

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        for pattern in self.patterns:
            for match in pattern.finditer(string):
                if match.group(1).lower() not in self.words:
                    yield match.group(1)


class UrlPassword(BasePlugin):
    """A password in a URL, with or without a user (``redis://:pw@host``)."""

    secret_type = "Password in a URL"
    pattern = re.compile(
        r"""\b[a-z][a-z0-9+.-]*://[^/\s:@'"]*:(?!\{\{|\$|<|\*\*\*|password@)([^@\s/'"]+)@"""
    )

    def analyze_string(self, string: str) -> Generator[str, None, None]:
        yield from (match.group(1) for match in self.pattern.finditer(string))
