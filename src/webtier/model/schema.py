"""The typed model of every role's variables: one pydantic class per role.

Each field is one inventory variable, named as the inventory names it (``nginx_sites``),
with its type, its bounds and the form its value must have to be safe in the config
file it ends up in (an nginx word cannot hold ``;``, a Gunicorn trusted address cannot
hold Python, a path cannot climb out of its directory). Checks between the variables of
one role live on its class (a Redis that listens beyond loopback needs authentication);
checks across hosts and tiers are ``webtier.model.capacity.check``.

The defaults stay where Ansible reads them (``roles/<role>/defaults/main.yml``): a host
is validated with its role's defaults under its own variables. A value still holding a
Jinja expression (``{{ python_app_name }}``) is resolved on the host and is not judged
here. ``meta/argument_specs.yml`` (what ``ansible-doc`` shows and Ansible checks when a
role is used alone) must agree with these classes: tests/unit/test_model.py holds them
together.

``findings(host, role, values)`` is what preflight runs, for both engines.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

import jinja2
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from webtier.model.access import SENTINEL_HELLO, redis_app_prefix
from webtier.model.inventory import Unresolved

#: Listen backlogs above this are cut by the kernel (somaxconn is at most 65535 on 5.4+
#: kernels, the listen() argument is an int but the queue length a u16 before 5.x).
MAX_BACKLOG = 65535


@dataclass(frozen=True)
class Finding:
    """One mistake: ``host``'s ``variable`` has ``value``, which breaks ``limit``."""

    host: str
    variable: str
    value: Any
    limit: str
    fix: str

    def __str__(self) -> str:
        # booleans as the inventory writes them (true, not True)
        value = str(self.value).lower() if isinstance(self.value, bool) else self.value
        return f"{self.host}: {self.variable}={value} breaks {self.limit}. Fix: {self.fix}"


#: Variables whose values a finding does not show (preflight's output reaches logs).
SECRET = re.compile(r"password|secret_env|git_key|tls_key")
HIDDEN = "<hidden>"


def shown(variable: str, value: Any) -> Any:
    """``value`` as a finding may show it: a secret's only as empty or not, also where
    it sits inside a structure (postgresql_databases[].password)."""
    if SECRET.search(variable) and value not in ("", None):
        return HIDDEN
    if isinstance(value, Mapping):
        return {k: shown(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(variable, v) for v in value]
    if isinstance(value, str):  # a URL's credentials (a git or index URL with a token)
        return _CREDENTIALS.sub(r"\1***@", value)
    return value


#: The user-information part of a URL (a user, a password or a token before an @), as
#: findings hide it.
_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@")


# --- Value forms ---------------------------------------------------------------------
# Each checker raises ValueError("<what the value must be>; <how to write it>"): the
# first half is the rule a finding names, the second its fix.


def _matches(pattern: str, rule: str, fix: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{rule}; {fix}")
        return value

    return AfterValidator(check)


def _port_of(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("a host:port with a port in 1..65535; write it as 0.0.0.0:8000")
    return value


def _address(value: str) -> str:
    """An IP address or network (a trusted proxy), or ``*`` for any."""
    if value != "*":
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(
                "an IP address or network (10.0.0.5, 10.0.0.0/24) or *; "
                "name the load balancers' addresses"
            ) from None
    return value


def covers_every_address(value: str) -> bool:
    """``*``, or a network of every address (0.0.0.0/0, ::/0): a trusted-proxy entry that
    trusts any client."""
    if value == "*":
        return True
    try:
        return ipaddress.ip_network(value, strict=False).prefixlen == 0
    except ValueError:
        return False


def _no_credentials(value: str) -> str:
    """A repository URL without a user's password or token in it (it would be written
    to the release's .git/config and shown in findings and logs)."""
    if re.match(r"https://[^/@]+@", value) or re.match(r"ssh://[^/@]*:[^/@]*@", value):
        raise ValueError(
            "a repository URL without credentials (a token or password in it lands in "
            "the release's .git/config and in logs); use python_app_git_key (a deploy "
            "key, in the vault) with an ssh:// or git@ URL"
        )
    return value


def _no_climbing(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError("a path without '..'; give the directory itself")
    return value


def _bind_port(value: str) -> str:
    return value if value.startswith("unix:") else _port_of(value)


_VAULT_FIX = "set it in the environment's vault (inventory/<env>/group_vars/all/vault.yml)"


class _Refusal(ValueError):
    """A rule between a role's variables, raised by a model validator: names its variable."""

    def __init__(self, variable: str, rule: str, fix: str):
        super().__init__(f"{rule}; {fix}")
        self.variable, self.rule, self.fix = variable, rule, fix


def _finding(variable: str, rule: str, fix: str) -> _Refusal:
    return _Refusal(variable, rule, fix)


Port = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[Any, BeforeValidator(lambda v: parse_count(v, auto_allowed=False))]
Backlog = Annotated[int, Field(ge=1, le=MAX_BACKLOG)]


def parse_count(value: Any, auto_allowed: bool = True) -> str | int:
    """A count of workers, threads, connections or CPUs: an int >= 1, or ``auto``."""
    if auto_allowed and value == "auto":
        return value
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]+", str(value).strip()) or int(value) < 1:
        either = " or auto" if auto_allowed else ""
        raise ValueError(f"a count must be an int >= 1{either}; write a count such as 4{either}")
    return int(value)


#: A count, or ``auto`` (derived from the host's CPUs).
AutoCount = Annotated[Any, BeforeValidator(parse_count)]
#: Names that become file names, unit names, users and nginx identifiers.
Name = Annotated[
    str,
    _matches(
        r"[a-z][a-z0-9_-]{0,31}",
        "a lower-case name of letters, digits, '_' and '-' (at most 32)",
        "for example demo or shop_api",
    ),
]
Identifier = Annotated[
    str,
    _matches(
        r"[a-z][a-z0-9_]{0,63}",
        "a lower-case identifier of letters, digits and '_'",
        "for example flask_gunicorn",
    ),
]
#: A server_name entry: a host name, a wildcard name, or _ (none).
ServerName = Annotated[
    str,
    _matches(
        r"_|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(\.\*)?",
        "a host name (www.example.com), a wildcard (*.example.com) or _; nothing that "
        "ends the directive (a space, ';', '{', '}', a quote)",
        "give each name as its own list entry",
    ),
]
NginxSize = Annotated[
    str,
    _matches(r"[0-9]+[kKmMgG]?", "an nginx size (10m, 512k, 1024)", "write 10m, not '10 MB'"),
]
NginxTime = Annotated[
    str,
    _matches(
        r"[0-9]+(ms|s|m|h|d)?", "an nginx time (500ms, 5s, 1m, 2h)", "write 60s, not '60 sec'"
    ),
]
NginxRate = Annotated[
    str,
    _matches(r"[0-9]+r/[sm]", "an nginx rate (100r/s or 600r/m)", "write 100r/s"),
]
NginxBuffers = Annotated[
    str,
    _matches(r"[0-9]+ [0-9]+[kKmM]?", "a count and a size (16 16k)", "write 16 16k"),
]
#: An nginx variable a zone is keyed on ($binary_remote_addr, $server_name ...).
NginxKey = Annotated[
    str,
    _matches(r"\$[a-z_][a-z0-9_]*", "one nginx variable", "write $binary_remote_addr"),
]
AbsPath = Annotated[
    str,
    _matches(
        r"/[A-Za-z0-9._/+@-]*",
        "an absolute path of letters, digits and ._/+@- (no spaces, quotes or ';')",
        "for example /srv/demo",
    ),
    AfterValidator(_no_climbing),
]
#: A host:port to bind or reach (Gunicorn, uWSGI), or a unix socket path.
Bind = Annotated[
    str,
    _matches(
        r"unix:/[A-Za-z0-9._/-]+|(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9.-]+):[0-9]+",
        "host:port (0.0.0.0:8000, [::]:8000) or unix:/path",
        "write 0.0.0.0:8000",
    ),
]
TrustedAddress = Annotated[str, AfterValidator(_address)]
HostName = Annotated[
    str,
    _matches(
        r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:]+",
        "a host name or an address",
        "for example 10.0.1.5 or redis1.internal",
    ),
]
BindAddress = Annotated[
    str,
    _matches(
        r"-?([0-9.]+|[0-9A-Fa-f:]+|localhost|private)",
        "an address to listen on (127.0.0.1, ::1, 10.0.0.5) or 'private' (the host's own)",
        "for example [127.0.0.1, private]",
    ),
]
#: A secret: any characters but a line break (it would end the line of its file).
Secret = Annotated[
    str,
    _matches(r"[^\r\n\x00]*", "a single line", "remove the line break from the secret"),
]
#: PEM text (a certificate), or empty; or a vault's placeholder while it is sealed.
Pem = Annotated[
    str,
    _matches(r"<vault:[a-z0-9_]+>|[A-Za-z0-9+/=\s:-]*", "PEM text", "paste the PEM text as it is"),
]
#: A PEM private key (the vault's): never shown in a finding.
PemKey = Annotated[str, Field(repr=False)]
#: An environment variable's name and value in a systemd EnvironmentFile.
EnvName = Annotated[
    str,
    _matches(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name", "for example REDIS_URL"),
]
EnvValue = Annotated[
    str,
    _matches(r"[^\r\n\x00]*", "a single line", "remove the line break"),
]
#: A PEP 508 environment marker: `; python_version >= "3.11" and sys_platform == "linux"`.
_MARKER_TERM = (
    r"[a-z_.]+ ?(===?|!=|<=?|>=?|~=| in | not in ) ?"
    r"(\"[A-Za-z0-9._ -]*\"|'[A-Za-z0-9._ -]*')"
)
#: A pip requirement: one line that is not an option (-e, --index-url ...), without
#: shell characters; a direct https reference and a marker allowed.
Requirement = Annotated[
    str,
    _matches(
        r"[A-Za-z0-9][^\s#;@|&$`'\"\\]*"
        r"( ?@ ?https?://[^\s#;|&$`<>'\"\\]+)?"
        rf"( ?; ?{_MARKER_TERM}( (and|or) {_MARKER_TERM})*)?",
        "one pip requirement (flask==3.1.0, 'gunicorn[gevent]', a marker after ';'), not an "
        "option or two lines",
        "give options through python_app_pip_index_url",
    ),
]
#: An http(s) URL, or empty (none).
Url = Annotated[
    str,
    _matches(
        r"|https?://[^\s;|&$`<>()'\"\\]+",
        "an http(s) URL (or empty) without shell characters: space, ';', '|', '&', '$', "
        "'`', '<', '>', '(', ')', quotes, '\\'",
        "for example https://pypi.example/simple",
    ),
]
Sysctl = Annotated[
    str,
    _matches(r"[a-z0-9_]+(\.[a-z0-9_-]+)+", "a sysctl key", "for example vm.overcommit_memory"),
]
Version = Annotated[
    str,
    _matches(r"[0-9]+(\.[0-9A-Za-z]+)*", "a version number", "for example 23.0.0"),
]
RedisSize = Annotated[
    str,
    _matches(
        r"(?i)[0-9]+(k|kb|m|mb|g|gb)?|[0-9]+(\.[0-9]+)?%",
        "bytes (1073741824), a Redis size (512mb) or a share of RAM (25%)",
        "write 512mb or 25%",
    ),
]
#: A word of a Redis config line (a user name, the master's name): no spaces.
RedisWord = Annotated[
    str,
    _matches(r"[A-Za-z0-9_.-]+", "one word of letters, digits, '_', '.', '-'", "for example app"),
]
#: An app's key prefix in Redis: its keys and channels are the ones that start with it
#: (no glob character: the ACL adds the one '*'); empty: no key and no channel at all.
RedisPrefix = Annotated[
    str,
    _matches(
        r"|[A-Za-z0-9_.:/-]+",
        "a key prefix of letters, digits, '_', '.', ':', '/', '-' (no glob character, no "
        "space), or empty for a user that reads no key",
        "for example demo:",
    ),
]
#: ACL command rules only (+@read, -flushall, +config|get): which keys and channels a
#: user reaches is its prefix's, never written here.
RedisCommands = Annotated[
    str,
    _matches(
        r"[+-]@?[a-z][a-z0-9_|-]*( [+-]@?[a-z][a-z0-9_|-]*)*",
        "ACL command rules only, such as +@all -@admin -@dangerous (the keys and channels "
        "a user reaches come from its prefix, not from ~ or & rules)",
        "write +@all -@admin -@dangerous and give the user a prefix",
    ),
]
Release = Annotated[
    str,
    _matches(
        r"|[A-Za-z0-9][A-Za-z0-9._-]*",
        "a release id of letters, digits, '.', '_' and '-' (or empty: keep the running one)",
        "for example 2026-12-01.1",
    ),
]
Entrypoint = Annotated[
    str,
    _matches(
        r"|[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*(\(\))?",
        "module:callable or module:factory() (empty only where no app server runs the app)",
        "for example demo_flask.app:app",
    ),
]


Group = Annotated[
    str, _matches(r"[A-Za-z0-9_-]+", "an inventory group", "name a group of the inventory")
]


@cache
def _systemd_says(kind: str, value: str) -> str | None:
    """What ``systemd-analyze calendar|timespan VALUE`` refuses (its message), None when
    it accepts VALUE or is not installed here (the role then asks the host's systemd,
    before the timer is written). systemd's own parser: no second copy of its grammar."""
    try:
        run = subprocess.run(
            ["systemd-analyze", kind, "--", value],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return None if run.returncode == 0 else (run.stderr.strip().splitlines() or ["refused"])[-1]


def _systemd(kind: str, rule: str, fix: str):
    def check(value: str) -> str:
        # (the characters first: the value goes into a unit file, one line)
        if not re.fullmatch(r"[A-Za-z0-9 ,.:*/~+-]+", value) or _systemd_says(kind, value):
            raise ValueError(f"{rule}; {fix}")
        return value

    return AfterValidator(check)


#: When a timer runs (systemd OnCalendar), as systemd-analyze calendar accepts it.
Calendar = Annotated[
    str,
    _systemd(
        "calendar",
        "a systemd calendar event (systemd-analyze calendar accepts it)",
        "for example 'Sun *-*-* 01:00:00' or 'daily'",
    ),
]
#: A systemd time span (RandomizedDelaySec).
Timespan = Annotated[
    str,
    _systemd("timespan", "a systemd time span", "for example 15min or 1h"),
]


class Role(BaseModel):
    """A role's variables. Unknown names are reported by preflight with a suggestion."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CpuDemand(BaseModel):
    """One endpoint's calibrated CPU cost: what ``make loadtest`` measured (webtier.model.cpu)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    hosts_us: dict[str, Annotated[float, Field(ge=0)]]
    delay_us: Annotated[float, Field(ge=0)] = 0.0
    calibrated: str = ""


class Webtier(Role):
    """What the inventory says about a host itself (no role of its own; all optional)."""

    webtier_app_server: Literal["gunicorn", "uwsgi"] | None = None
    webtier_app_address: HostName | None = None
    webtier_app_weight: Count | None = None
    webtier_app_backup: StrictBool | None = None
    #: A Gunicorn host's stand-in port during a release in place (default: its port + 1).
    webtier_app_standin_port: Port | None = None
    webtier_cpus: Count | None = None
    webtier_memory_mb: Annotated[int, Field(ge=64)] | None = None
    #: Hosts with one pool name share their CPUs (the sandbox's containers: one machine).
    webtier_cpu_pool: Group | None = None
    #: Per endpoint path, the CPU one request costs on each host (webtier.model.cpu).
    webtier_cpu_demand: dict[str, CpuDemand] | None = None


class KernelTuning(Role):
    class PortRange(BaseModel):
        model_config = ConfigDict(extra="forbid")
        low: Annotated[int, Field(ge=1024, le=65534)]
        high: Annotated[int, Field(ge=1025, le=65535)]

        @model_validator(mode="after")
        def ordered(self):
            if self.low >= self.high:
                raise ValueError("low below high; for example {low: 1024, high: 65000}")
            return self

    kernel_tuning_somaxconn: Annotated[int, Field(ge=128, le=MAX_BACKLOG)]
    kernel_tuning_tcp_max_syn_backlog: Annotated[int, Field(ge=128, le=1048576)]
    kernel_tuning_netdev_max_backlog: Annotated[int, Field(ge=1000, le=1048576)]
    kernel_tuning_ip_local_port_range: PortRange
    kernel_tuning_tcp_fin_timeout: Annotated[int, Field(ge=5, le=120)]
    kernel_tuning_tcp_syncookies: StrictBool
    kernel_tuning_file_max: Annotated[int, Field(ge=65536, le=9223372036854775807)]
    kernel_tuning_nr_open: Annotated[int, Field(ge=65536, le=1073741816)]
    kernel_tuning_nofile: Annotated[int, Field(ge=1024)]
    kernel_tuning_dependent_sysctl: dict[Sysctl, int | str]
    kernel_tuning_host_kind: Literal["auto", "container", "machine"]
    kernel_tuning_dropin_name: Annotated[
        str, _matches(r"[0-9]{2}-[a-z0-9-]+", "NN-name", "for example 60-webtier")
    ]

    @model_validator(mode="after")
    def relations(self):
        if self.kernel_tuning_nofile > self.kernel_tuning_nr_open:
            raise _finding(
                "kernel_tuning_nofile",
                f"fs.nr_open={self.kernel_tuning_nr_open} (no process may open more)",
                "lower kernel_tuning_nofile or raise kernel_tuning_nr_open",
            )
        if str(self.kernel_tuning_dependent_sysctl.get("net.ipv4.tcp_timestamps", 1)) == "0":
            raise _finding(
                "kernel_tuning_dependent_sysctl",
                "net.ipv4.tcp_timestamps=0 (TIME-WAIT reuse needs timestamps)",
                "leave net.ipv4.tcp_timestamps out",
            )
        return self


class Firewall(Role):
    firewall_enabled: StrictBool
    firewall_ssh_port: Port
    firewall_extra_rules: list[
        Annotated[
            str,
            _matches(
                r"[^\r\n{}#;]+",
                "one nftables rule (no line break, '{', '}', '#' or ';')",
                "for example 'tcp dport 9100 ip saddr 10.0.0.0/24 accept'",
            ),
        ]
    ]


class ReleaseCommand(BaseModel):
    """One command of python_app_release_commands."""

    model_config = ConfigDict(extra="forbid")
    command: Annotated[
        str,
        _matches(
            r"[A-Za-z0-9_.-]+( [^\r\n|;&$`<>'\"\\]+)?",
            "a program of the release's virtualenv and its arguments, on one line, without "
            "'|', ';', '&', '$', '`', '<', '>', quotes or '\\' (no shell runs it: they would "
            "reach the program as they are)",
            "for example python manage.py migrate --noinput; put a pipeline in a "
            "management command of the app",
        ),
    ]
    once: StrictBool = False


class PythonApp(Role):
    python_app_name: Name
    python_app_src: Annotated[
        str,
        _matches(
            r"|[A-Za-z0-9._/+@-]+",
            "a directory (relative to the project, or absolute) of letters, digits and ._/+@-",
            "for example apps/demo_flask",
        ),
        AfterValidator(_no_climbing),
    ]
    python_app_pip_spec: Annotated[
        str,
        _matches(
            r"|[A-Za-z0-9][^\s;|&$`<>()'\"\\]*",
            "one pip spec (demo==1.2.0, demo[extra]>=1, a path or an https URL), not an "
            "option, without shell characters: space, ';', '|', '&', '$', '`', '<', '>', "
            "'(', ')', quotes, '\\'",
            "give an index through python_app_pip_index_url",
        ),
    ]
    python_app_git_repo: Annotated[
        str,
        _matches(
            r"|(https://|ssh://|git@)[A-Za-z0-9._~:/@+-]+|/[A-Za-z0-9._/+-]+",
            "a git repository: https://..., ssh://..., git@host:path or an absolute path",
            "for example git@git.example.com:team/shop.git",
        ),
        AfterValidator(_no_credentials),
    ]
    python_app_git_version: Annotated[
        str, _matches(r"[A-Za-z0-9][A-Za-z0-9._/-]*", "a tag, branch or commit", "v1.2.0")
    ]
    python_app_git_key: Annotated[str, Field(repr=False)]
    python_app_packaged: StrictBool
    python_app_requirements_file: Annotated[
        str,
        _matches(r"|[A-Za-z0-9._/-]+", "a path inside the source", "requirements.txt"),
        AfterValidator(_no_climbing),
    ]
    python_app_system_packages: list[
        Annotated[str, _matches(r"[a-z0-9][a-z0-9.+-]+", "a Debian package name", "libpq5")]
    ]
    python_app_release_commands: list[ReleaseCommand]
    python_app_health_path: Annotated[
        str, _matches(r"/[A-Za-z0-9._/~%+-]*", "an absolute URL path", "/healthz")
    ]
    python_app_requirements: list[Requirement]
    python_app_server_requirements: list[Requirement]
    python_app_entrypoint: Entrypoint
    python_app_interface: Literal["wsgi", "asgi"]
    python_app_release: Release
    python_app_switch_only: StrictBool
    python_app_keep_releases: Annotated[int, Field(ge=1, le=100)]
    python_app_env: dict[EnvName, EnvValue | int | float | bool]
    python_app_secret_env: dict[EnvName, EnvValue | int | float | bool]
    python_app_redis_group: Annotated[
        str, _matches(r"|[A-Za-z_][A-Za-z0-9_]*", "an inventory group name", "e.g. redis")
    ]
    python_app_redis_user: Annotated[
        str, _matches(r"|[A-Za-z0-9_.-]+", "a user of redis_app_users (or empty)", "e.g. demo")
    ]
    python_app_user: Annotated[
        str,
        _matches(r"[a-z_][a-z0-9_-]{0,31}", "a user name", "for example demo"),
    ]
    python_app_database_group: Annotated[
        str, _matches(r"|[A-Za-z_][A-Za-z0-9_]*", "an inventory group name", "e.g. databases")
    ]
    python_app_database: Annotated[
        str, _matches(r"|[a-z_][a-z0-9_]{0,62}", "a database name", "e.g. demo")
    ]
    python_app_root: AbsPath
    python_app_pip_index_url: Url

    @model_validator(mode="after")
    def one_source(self):
        sources = [self.python_app_src, self.python_app_pip_spec, self.python_app_git_repo]
        if sum(bool(s) for s in sources) != 1:
            raise _finding(
                "python_app_src",
                "exactly one of python_app_src, python_app_pip_spec and python_app_git_repo",
                "give the app's directory in python_app_src, a pip spec in "
                "python_app_pip_spec or a repository in python_app_git_repo, one of them",
            )
        if not self.python_app_packaged and self.python_app_pip_spec:
            raise _finding(
                "python_app_packaged",
                "a source on disk (a pip spec is a package by definition)",
                "leave python_app_packaged true, or give the source in python_app_src or "
                "python_app_git_repo",
            )
        if self.python_app_git_key and not re.search(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----", self.python_app_git_key
        ):
            raise _finding(
                "python_app_git_key", "a PEM or OpenSSH private key (or empty)", _VAULT_FIX
            )
        if self.python_app_user == "root":
            raise _finding(
                "python_app_user",
                "an app's own user (root would run the app with every right)",
                "leave python_app_user unset: it defaults to the app's name",
            )
        return self


class Gunicorn(Role):
    gunicorn_bind: Annotated[list[Annotated[Bind, AfterValidator(_bind_port)]], Field(min_length=1)]
    gunicorn_worker_class: Literal["sync", "gthread", "gevent", "asgi"]
    gunicorn_workers: AutoCount
    gunicorn_threads: AutoCount
    gunicorn_worker_connections: AutoCount
    gunicorn_backlog: Backlog
    gunicorn_timeout: Annotated[int, Field(ge=1, le=3600)]
    gunicorn_graceful_timeout: Annotated[int, Field(ge=1, le=3600)]
    gunicorn_keepalive: Annotated[int, Field(ge=0, le=3600)]
    gunicorn_max_requests: Annotated[int, Field(ge=0, le=100000000)]
    gunicorn_max_requests_jitter: Annotated[int, Field(ge=0, le=100000000)]
    gunicorn_preload_app: StrictBool
    # The list first: a bad element is reported at its index.
    gunicorn_forwarded_allow_ips: list[TrustedAddress] | Literal["auto"]
    gunicorn_forwarded_allow_any: StrictBool
    gunicorn_access_log: StrictBool
    gunicorn_version: Version
    gunicorn_gevent_version: Version
    gunicorn_uvicorn_worker_version: Version
    gunicorn_websockets_version: Version
    gunicorn_asgi_fast_path: StrictBool
    gunicorn_uvloop_version: Version
    gunicorn_httptools_version: Version

    @model_validator(mode="after")
    def trusted_proxies(self):
        trusted = self.gunicorn_forwarded_allow_ips
        every = [a for a in trusted if covers_every_address(a)] if isinstance(trusted, list) else []
        if every and not self.gunicorn_forwarded_allow_any:
            raise _finding(
                "gunicorn_forwarded_allow_ips",
                f"the addresses of the load balancers, not {every[0]} (it trusts every "
                "address: any client that reaches Gunicorn can claim HTTPS and another "
                "address in X-Forwarded-* headers)",
                "list the load balancers' addresses; for an app reached only through a "
                "unix socket or a private network, set gunicorn_forwarded_allow_any: true",
            )
        return self


class Uwsgi(Role):
    uwsgi_protocol: Literal["uwsgi", "http"]
    uwsgi_bind: Annotated[Bind, AfterValidator(_bind_port)]
    uwsgi_listen: Backlog
    uwsgi_processes: AutoCount
    uwsgi_threads: Annotated[int, Field(ge=1, le=1024)]
    uwsgi_harakiri: Annotated[int, Field(ge=1, le=3600)]
    uwsgi_max_requests: Annotated[int, Field(ge=0, le=100000000)]
    uwsgi_max_requests_delta: Annotated[int, Field(ge=0, le=100000000)]
    uwsgi_max_worker_lifetime: Annotated[int, Field(ge=0, le=31536000)]
    uwsgi_buffer_size: Annotated[int, Field(ge=4096, le=65535)]
    uwsgi_stats: Annotated[
        str,
        _matches(
            r"(127\.[0-9.]+|localhost):[0-9]+|/[A-Za-z0-9._/-]+",
            "a loopback host:port or a socket path (the stats server has no authentication)",
            "write 127.0.0.1:9191",
        ),
    ]
    uwsgi_access_log: StrictBool


#: Directories no location may serve (an alias into them publishes the system's files).
SYSTEM_DIRS = ("/etc", "/root", "/home", "/proc", "/sys", "/dev", "/boot", "/run", "/var/lib")


class Nginx(Role):
    class Server(BaseModel):
        model_config = ConfigDict(extra="forbid")
        address: Annotated[
            str,
            AfterValidator(_port_of),
            _matches(r"[A-Za-z0-9.:\[\]-]+", "host:port", "write 10.0.0.5:8000"),
        ]
        weight: Count = 1
        backup: StrictBool = False
        max_fails: Annotated[int, Field(ge=0)] = 1
        fail_timeout: NginxTime = "10s"
        max_conns: Annotated[int, Field(ge=0)] = 0

    class Upstream(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: Identifier
        group: Group | None = None
        servers: list[Nginx.Server] = []
        protocol: Literal["http", "uwsgi"] | None = None
        method: Literal["round_robin", "least_conn", "ip_hash", "hash", "random"] = "least_conn"
        hash_key: Annotated[
            str, _matches(r"[$A-Za-z0-9_]+", "nginx variables", "write $request_uri")
        ] = "$request_uri"
        keepalive: Annotated[int, Field(ge=0)] = 32
        keepalive_requests: Count = 1000
        keepalive_timeout: NginxTime = "60s"
        max_fails: Annotated[int, Field(ge=0)] = 1
        fail_timeout: NginxTime = "10s"
        max_conns: Annotated[int, Field(ge=0)] = 0

    class LimitReq(BaseModel):
        model_config = ConfigDict(extra="forbid")
        zone: Identifier
        burst: Annotated[int, Field(ge=0)] | None = None
        nodelay: StrictBool = True

    class LimitConn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        zone: Identifier
        limit: Count

    class Tls(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: Port = 443
        certificate: AbsPath
        certificate_key: AbsPath
        self_signed: StrictBool = False
        redirect_http: StrictBool = False
        hsts: StrictBool = True

    class Location(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: Annotated[
            str,
            _matches(
                r"(= |\^~ )?/[A-Za-z0-9._/~%+@-]*",
                "a location path (/, /static/, = /healthz, ^~ /media/) without spaces, "
                "quotes, '{', '}' or ';'",
                "for example /api/",
            ),
        ]
        upstream: (
            Identifier | Annotated[list[Identifier], Field(min_length=1, max_length=2)] | None
        ) = None
        alias: AbsPath | None = None
        expires: NginxTime | None = None
        # `return` is a Python keyword: the inventory's key, read by alias.
        return_: (
            Annotated[
                str,
                _matches(
                    r"[0-9]{3}( [^\r\n;{}\"']+)?", "a status and an optional URL or text", "404"
                ),
            ]
            | None
        ) = Field(default=None, alias="return")
        limit_req: Nginx.LimitReq | None = None
        limit_conn: Nginx.LimitConn | None = None
        # How long a proxied connection may sit idle here (WebSockets, long polls).
        timeout: NginxTime | None = None
        # How long the load balancer keeps the app's 200 answers here (static files).
        cache: NginxTime | None = None

        @model_validator(mode="after")
        def one_action(self):
            actions = [self.upstream is not None, self.alias is not None, self.return_ is not None]
            if sum(actions) != 1:
                raise ValueError(
                    "exactly one of upstream, alias and return; give each location one action"
                )
            if self.cache is not None and self.upstream is None:
                raise ValueError("cache on a location with an upstream; remove cache here")
            if self.alias is not None:
                path = self.path.split()[-1]
                if path.endswith("/") != self.alias.endswith("/"):
                    raise ValueError(
                        "a path and an alias that both end with '/' or neither (with "
                        f"{path} and {self.alias}, a request for {path.rstrip('/')}../ "
                        "reads outside the alias: gixy's alias_traversal); end both with '/'"
                    )
                root = "/" + self.alias.strip("/").split("/")[0]
                if self.alias.rstrip("/") in ("", *SYSTEM_DIRS) or root in SYSTEM_DIRS:
                    raise ValueError(
                        f"an alias to the app's own files, not to {self.alias} (a system "
                        "directory, served to anyone); alias a directory such as "
                        "/srv/<app>/current/static/"
                    )
            return self

    class Site(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: Identifier
        server_name: ServerName | list[ServerName] = "_"
        port: Port | None = 80
        default_server: StrictBool = False
        tls: Nginx.Tls | None = None
        limit_req: Nginx.LimitReq | None = None
        limit_conn: Nginx.LimitConn | None = None
        locations: Annotated[list[Nginx.Location], Field(min_length=1)]

    class ReqZone(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: Identifier
        rate: NginxRate
        key: NginxKey = "$binary_remote_addr"
        size: NginxSize = "10m"

    class ConnZone(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: Identifier
        key: NginxKey = "$binary_remote_addr"
        size: NginxSize = "10m"

    nginx_worker_processes: AutoCount
    nginx_worker_connections: Annotated[int, Field(ge=1, le=1048576)]
    nginx_worker_rlimit_nofile: AutoCount
    nginx_listen_backlog: Backlog
    nginx_reuseport: StrictBool
    nginx_http2: StrictBool
    nginx_real_ip_from: list[TrustedAddress | HostName]
    nginx_real_ip_header: Annotated[
        str, _matches(r"[A-Za-z0-9-]+", "a header name", "X-Forwarded-For")
    ]
    nginx_proxy_protocol: StrictBool
    nginx_keepalive_timeout: Annotated[int, Field(ge=0, le=3600)]
    nginx_keepalive_requests: Annotated[int, Field(ge=1, le=100000000)]
    nginx_client_max_body_size: NginxSize
    nginx_client_body_buffer_size: NginxSize
    nginx_client_header_buffer_size: NginxSize
    nginx_large_client_header_buffers: NginxBuffers
    nginx_client_timeout: NginxTime
    nginx_gzip: StrictBool
    nginx_gzip_comp_level: Annotated[int, Field(ge=1, le=9)]
    nginx_gzip_min_length: Annotated[int, Field(ge=0)]
    nginx_gzip_types: list[
        Annotated[str, _matches(r"[a-z]+/[A-Za-z0-9.+*-]+", "a MIME type", "text/css")]
    ]
    nginx_upstreams: list[Upstream]
    nginx_proxy_connect_timeout: NginxTime
    nginx_proxy_timeout: NginxTime
    nginx_proxy_buffering: StrictBool
    nginx_proxy_buffers: NginxBuffers
    nginx_next_upstream: list[
        Literal[
            "error",
            "timeout",
            "invalid_header",
            "http_500",
            "http_502",
            "http_503",
            "http_504",
            "http_403",
            "http_404",
            "http_429",
            "non_idempotent",
            "off",
        ]
    ]
    nginx_next_upstream_tries: Annotated[int, Field(ge=0, le=100)]
    nginx_next_upstream_timeout: NginxTime
    nginx_sites: list[Site]
    nginx_limit_req_zones: list[ReqZone]
    nginx_limit_conn_zones: list[ConnZone]
    nginx_tls_protocols: Annotated[
        list[Literal["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]], Field(min_length=1)
    ]
    nginx_tls_allow_legacy: StrictBool
    nginx_tls_ciphers: list[
        Annotated[
            str,
            _matches(r"[A-Za-z0-9_-]+", "an OpenSSL cipher name", "ECDHE-RSA-AES128-GCM-SHA256"),
        ]
    ]
    nginx_hsts_max_age: Annotated[int, Field(ge=0)]
    nginx_security_headers: dict[
        Annotated[str, _matches(r"[A-Za-z0-9-]+", "a header name", "X-Frame-Options")],
        Annotated[
            str,
            _matches(
                r"[^\"\r\n\\]*",
                "a header value without '\"', '\\' or a line break (nginx writes it in quotes)",
                "write the value alone, without quotes",
            ),
        ],
    ]
    nginx_access_log: StrictBool
    nginx_access_log_buffered: StrictBool
    nginx_status_port: Port

    @model_validator(mode="after")
    def sites_and_upstreams(self):
        for i, site in enumerate(self.nginx_sites):
            paths = [loc.path for loc in site.locations]
            if twice := sorted({p for p in paths if paths.count(p) > 1}):
                raise _finding(
                    f"nginx_sites[{i}].locations",
                    f"one location per path ({', '.join(twice)} given twice: nginx -t "
                    "refuses a duplicate location)",
                    "merge the entries of the same path",
                )
        # (A location naming no upstream of nginx_upstreams: webtier.files.nginx.plan's
        # own check, where the upstreams are resolved.)
        return self

    @model_validator(mode="after")
    def tls_minimum(self):
        legacy = [p for p in self.nginx_tls_protocols if p in ("TLSv1", "TLSv1.1")]
        if legacy and not self.nginx_tls_allow_legacy:
            raise _finding(
                "nginx_tls_protocols",
                f"TLS 1.2 or later ({', '.join(legacy)} are deprecated by RFC 8996 and "
                "broken by downgrade attacks)",
                "write [TLSv1.2, TLSv1.3]; for clients that cannot do TLS 1.2, set "
                "nginx_tls_allow_legacy: true",
            )
        return self

    @model_validator(mode="after")
    def real_ip_sources(self):
        every = [a for a in self.nginx_real_ip_from if covers_every_address(a)]
        if every:
            raise _finding(
                "nginx_real_ip_from",
                f"the fronting load balancers' addresses or networks, not {every[0]} (it "
                f"trusts every address: any client could set its own address in "
                f"{self.nginx_real_ip_header}, past rate limits and access rules)",
                "list the addresses or networks of the proxies in front of nginx",
            )
        return self

    @model_validator(mode="after")
    def proxy_protocol_source(self):
        if self.nginx_proxy_protocol and not self.nginx_real_ip_from:
            raise _finding(
                "nginx_proxy_protocol",
                "the load balancers that send it, in nginx_real_ip_from (without them the "
                "client's address in the PROXY header is never used)",
                "list the fronting load balancers' addresses or networks in nginx_real_ip_from",
            )
        return self


def tls_material(model: BaseModel, switch: str):
    """A TLS switch's material (``<switch>_ca_cert``, ``_cert``, ``_key``): PEM
    certificates and a PEM private key while the switch is on (Redis, PgBouncer)."""
    if not getattr(model, switch):
        return model
    for name in (f"{switch}_ca_cert", f"{switch}_cert"):
        if "-----BEGIN CERTIFICATE-----" not in getattr(model, name):
            raise _finding(
                name,
                f"a PEM certificate while {switch} is true",
                "paste the PEM text (-----BEGIN CERTIFICATE----- ...)",
            )
    if not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", getattr(model, f"{switch}_key")):
        raise _finding(f"{switch}_key", f"a PEM private key while {switch} is true", _VAULT_FIX)
    return model


class Redis(Role):
    redis_engine: Literal["redis", "valkey"]
    redis_profile: Literal["cache", "store"]
    redis_maxmemory: RedisSize | Annotated[int, Field(ge=0)]
    redis_maxmemory_policy: Literal[
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ]
    redis_save: Annotated[
        str,
        _matches(
            r"|[0-9]+ [0-9]+( [0-9]+ [0-9]+)*", "pairs of seconds and changes", "3600 1 300 100"
        ),
    ]
    redis_appendfsync: Literal["everysec", "always", "no"]
    redis_bind: Annotated[list[BindAddress], Field(min_length=1)]
    redis_port: Port
    redis_tcp_backlog: Backlog
    redis_maxclients: Annotated[int, Field(ge=1, le=1000000)]
    redis_timeout: Annotated[int, Field(ge=0, le=31536000)]
    redis_tcp_keepalive: Annotated[int, Field(ge=0, le=86400)]
    redis_io_threads: Annotated[int, Field(ge=1, le=128)]
    redis_extra_config: dict[
        Annotated[str, _matches(r"[a-z][a-z0-9-]*", "a redis.conf directive", "for example hz")],
        Annotated[str, _matches(r"[^\r\n]*", "a single line", "remove the line break")] | int,
    ]

    class AppUser(BaseModel):
        """One app's Redis user (the app's hosts and workers share it)."""

        model_config = ConfigDict(extra="forbid")
        name: RedisWord
        password: Annotated[Secret, Field(repr=False)] = ""
        prefix: RedisPrefix | None = None
        commands: RedisCommands | None = None
        unrestricted: Annotated[str, _matches(r"[^\r\n]*", "one line", "say why")] = ""

    redis_auth: StrictBool
    redis_app_users: list[AppUser]
    redis_app_commands: RedisCommands
    redis_admin_user: RedisWord
    redis_admin_password: Secret
    redis_replication_group: Annotated[
        str, _matches(r"|[A-Za-z0-9_-]+", "an inventory group (or empty)", "name the set's group")
    ]
    redis_replication_role: Literal["primary", "replica"]
    redis_announce_host: HostName
    redis_replication_user: RedisWord
    redis_replication_password: Secret
    redis_sentinel: StrictBool
    redis_sentinel_master_name: RedisWord
    redis_sentinel_quorum: Annotated[int, Field(ge=1, le=100)]
    redis_sentinel_port: Port
    redis_sentinel_down_after_ms: Annotated[int, Field(ge=100, le=3600000)]
    redis_sentinel_failover_timeout_ms: Annotated[int, Field(ge=1000, le=86400000)]
    redis_sentinel_parallel_syncs: Annotated[int, Field(ge=1, le=100)]
    redis_sentinel_password: Secret
    redis_sentinel_auth_user: RedisWord
    redis_sentinel_auth_password: Secret
    redis_tls: StrictBool
    redis_tls_ca_cert: Pem
    redis_tls_cert: Pem
    redis_tls_key: PemKey

    @model_validator(mode="after")
    def users(self):
        users = {
            "redis_admin_user": self.redis_admin_user,
            **{f"redis_app_users[{i}].name": u.name for i, u in enumerate(self.redis_app_users)},
            "redis_replication_user": self.redis_replication_user,
            "redis_sentinel_auth_user": self.redis_sentinel_auth_user,
        }
        for name, user in users.items():
            if user == "default":
                raise _finding(
                    name,
                    "a user of its own, not default (the ACL file switches Redis's default "
                    "user off: no client logs in without a name)",
                    "name it after its use, for example app or admin",
                )
        for name, user in users.items():
            if same := [n for n, u in users.items() if u == user and n != name]:
                raise _finding(
                    name,
                    f"a user of its own, not {user} as in {same[0]} (each has its own "
                    "password and rights; one name would give the weaker one the other's)",
                    "give each a different name",
                )
        self._app_users_apart()
        return self

    @model_validator(mode="after")
    def passwords(self):
        if not self.redis_auth:
            return self
        if not self.redis_admin_password:
            raise _finding(
                "redis_admin_password", "a password while redis_auth is true", _VAULT_FIX
            )
        for i, user in enumerate(self.redis_app_users):
            if not user.password:
                raise _finding(
                    f"redis_app_users[{i}].password",
                    f"a password for {user.name} while redis_auth is true",
                    _VAULT_FIX,
                )
        return self

    def _app_users_apart(self) -> None:
        """Each app reaches its own keys and channels only (redis_key_patterns), never
        Sentinel's; one that reaches every key says why."""
        prefixes = {}
        for i, user in enumerate(self.redis_app_users):
            at = f"redis_app_users[{i}]"
            if user.unrestricted:
                continue
            prefix = redis_app_prefix(user.name, user.prefix)
            if prefix and SENTINEL_HELLO.startswith(prefix):
                raise _finding(
                    f"{at}.prefix",
                    f"a key prefix of the app's own, not {prefix!r} (its channels would take "
                    f"in Sentinel's {SENTINEL_HELLO}, where a PUBLISH can move the "
                    "Sentinels' primary)",
                    f"use the app's name, for example {user.name}:",
                )
            for other, theirs in prefixes.items():
                if prefix and theirs and (prefix.startswith(theirs) or theirs.startswith(prefix)):
                    raise _finding(
                        f"{at}.prefix",
                        f"a key prefix apart from {other}'s ({theirs!r} and {prefix!r}: one "
                        "app could read and change the other's keys)",
                        "give each app a prefix that does not start the other's",
                    )
            prefixes[user.name] = prefix

    @model_validator(mode="after")
    def relations(self):
        limit = str(self.redis_maxmemory)
        if limit == "0" and self.redis_profile != "store":
            raise _finding(
                "redis_maxmemory",
                "a limit for the cache profile (without one a cache grows until the kernel "
                "kills it)",
                "give a size (512mb) or a share of RAM (25%); 0 is for redis_profile: store",
            )
        if limit.endswith("%") and float(limit[:-1]) > 90:
            raise _finding("redis_maxmemory", "at most 90% of RAM", "write 25%")
        public = [a for a in self.redis_bind if not re.match(r"-?(127\.|::1$|localhost$)", a)]
        if not self.redis_auth and public:
            raise _finding(
                "redis_auth",
                f"authentication when Redis listens beyond loopback ({', '.join(public)}): "
                "anyone who reaches it could read, change or wipe the data",
                "set redis_auth: true (passwords in the vault) or bind loopback only",
            )
        if self.redis_replication_group:
            if self.redis_auth and not self.redis_replication_password:
                raise _finding(
                    "redis_replication_password", "a password for a replicated set", _VAULT_FIX
                )
            if not public:
                raise _finding(
                    "redis_bind",
                    "an address the other hosts of the replicated set can reach",
                    "write redis_bind: [127.0.0.1, private]",
                )
        if self.redis_sentinel:
            if not self.redis_replication_group:
                raise _finding(
                    "redis_sentinel",
                    "a replicated set for Sentinel to watch",
                    "set redis_replication_group (an inventory group of the set)",
                )
            if not self.redis_sentinel_password or (
                self.redis_auth and not self.redis_sentinel_auth_password
            ):
                raise _finding(
                    "redis_sentinel_password",
                    "redis_sentinel_password and redis_sentinel_auth_password",
                    _VAULT_FIX,
                )
        return tls_material(self, "redis_tls")


class CeleryWorker(Role):
    class Queue(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: Annotated[
            str,
            _matches(r"[A-Za-z0-9][A-Za-z0-9_.-]*", "a queue name", "for example work"),
        ]
        concurrency: AutoCount = "auto"
        task_seconds: Annotated[float, Field(gt=0, le=86400)] | None = None

    celery_worker_app: Annotated[
        str,
        _matches(
            r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*",
            "module:attribute of the app's Celery instance",
            "for example webtier_demo_flask.tasks:celery",
        ),
    ]
    celery_worker_queues: Annotated[list[Queue], Field(min_length=1)]
    celery_worker_prefetch_multiplier: Annotated[int, Field(ge=1, le=1000)]
    celery_worker_max_tasks_per_child: Annotated[int, Field(ge=0, le=100000000)]
    celery_worker_soft_time_limit: Annotated[int, Field(ge=1, le=604800)]
    celery_worker_time_limit: Annotated[int, Field(ge=1, le=604800)]
    celery_worker_visibility_timeout: Annotated[int, Field(ge=1, le=2592000)]
    celery_worker_cpu_weight: Annotated[int, Field(ge=1, le=10000)]
    celery_worker_loglevel: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

    @model_validator(mode="after")
    def limits(self):
        names = [q.name for q in self.celery_worker_queues]
        if len(set(names)) != len(names):
            raise _finding(
                "celery_worker_queues",
                "one entry per queue (each is a systemd unit of its own)",
                "merge the entries of the same name",
            )
        if self.celery_worker_soft_time_limit >= self.celery_worker_time_limit:
            raise _finding(
                "celery_worker_soft_time_limit",
                f"below celery_worker_time_limit={self.celery_worker_time_limit} (a task "
                "gets the soft limit's exception first, then is killed at the hard one)",
                f"set it below {self.celery_worker_time_limit}",
            )
        if self.celery_worker_visibility_timeout <= self.celery_worker_time_limit:
            raise _finding(
                "celery_worker_visibility_timeout",
                f"longer than celery_worker_time_limit={self.celery_worker_time_limit} "
                "(the broker would hand a task that is still running to a second worker)",
                f"raise it above {self.celery_worker_time_limit}, e.g. "
                f"{2 * self.celery_worker_time_limit}",
            )
        return self


#: A PostgreSQL size: a number and a unit (8kB, 512MB, 4GB), as postgresql.conf takes it.
PgSize = Annotated[
    str,
    _matches(r"[0-9]+(kB|MB|GB|TB)", "a PostgreSQL size (a number and kB, MB, GB or TB)", "512MB"),
]
#: A database or user name: PostgreSQL's plain identifiers (no quoting needed anywhere).
PgName = Annotated[
    str,
    _matches(
        r"[a-z_][a-z0-9_]{0,62}",
        "a plain PostgreSQL name: lower-case letters, digits and '_', not starting with a digit",
        "for example demo or shop",
    ),
]


#: PostgreSQL's own databases: no app's.
PG_RESERVED = frozenset(("postgres", "template0", "template1"))
#: postgresql.conf settings the role writes from its own variables (or never changes):
#: postgresql_extra_config may not override them.
PG_MANAGED = frozenset(
    (
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "unix_socket_permissions",
        "data_directory",
        "config_file",
        "hba_file",
        "ident_file",
        "external_pid_file",
        "password_encryption",
        "max_connections",
        "superuser_reserved_connections",
        "reserved_connections",
        "shared_buffers",
        "effective_cache_size",
        "maintenance_work_mem",
        "work_mem",
    )
)


class Postgresql(Role):
    class Database(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: PgName
        user: PgName
        password: Annotated[Secret, Field(min_length=1, repr=False)]

    postgresql_databases: list[Database]
    postgresql_client_groups: Annotated[list[Group], Field(min_length=1)]
    postgresql_max_connections: Annotated[int, Field(ge=10, le=262143)]
    postgresql_superuser_reserved_connections: Annotated[int, Field(ge=1, le=100)]
    postgresql_reserved_connections: Annotated[int, Field(ge=0, le=1000)]
    postgresql_shared_buffers: Literal["auto"] | PgSize
    postgresql_effective_cache_size: Literal["auto"] | PgSize
    postgresql_maintenance_work_mem: Literal["auto"] | PgSize
    postgresql_work_mem: PgSize
    postgresql_extra_config: dict[
        Annotated[str, _matches(r"[a-z][a-z0-9_.]*", "a postgresql.conf name", "e.g. jit")],
        Annotated[str, _matches(r"[^\r\n'\\]*", "one line, no quote", "remove it")] | int | float,
    ]
    postgresql_pgbouncer_port: Port
    postgresql_pgbouncer_listen: Annotated[list[BindAddress], Field(min_length=1)]
    postgresql_pgbouncer_pool_mode: Literal["transaction", "session", "statement"]
    postgresql_pgbouncer_default_pool_size: Annotated[int, Field(ge=1, le=10000)]
    postgresql_pgbouncer_reserve_pool_size: Annotated[int, Field(ge=0, le=10000)]
    postgresql_pgbouncer_reserve_pool_timeout: Annotated[int, Field(ge=0, le=3600)]
    postgresql_pgbouncer_max_client_conn: Annotated[int, Field(ge=1, le=1000000)]
    postgresql_pgbouncer_listen_backlog: Backlog
    postgresql_pgbouncer_tls: StrictBool
    postgresql_pgbouncer_tls_ca_cert: Pem
    postgresql_pgbouncer_tls_cert: Pem
    postgresql_pgbouncer_tls_key: PemKey
    postgresql_replication_group: Annotated[
        str, _matches(r"|[A-Za-z0-9_-]+", "an inventory group (or empty)", "name the set's group")
    ]
    postgresql_monitor_group: Annotated[
        str, _matches(r"[A-Za-z0-9_-]+", "an inventory group", "name the monitor's group")
    ]
    postgresql_replication_password: Secret

    @model_validator(mode="after")
    def tls(self):
        return tls_material(self, "postgresql_pgbouncer_tls")

    @model_validator(mode="after")
    def replication_settings(self):
        """What a replicated host's server must keep of PostgreSQL's defaults."""
        if not self.postgresql_replication_group:
            return self
        extra = {k: str(v).lower() for k, v in self.postgresql_extra_config.items()}
        if extra.get("wal_level") == "minimal":
            raise _finding(
                "postgresql_extra_config.wal_level",
                "replica or logical on a replicated host: at minimal the server writes no "
                "WAL a standby can replay",
                "remove it (PostgreSQL's default, replica, is what the set needs)",
            )
        if extra.get("hot_standby") in ("off", "false", "0", "no"):
            raise _finding(
                "postgresql_extra_config.hot_standby",
                "on on a replicated host: pg_auto_failover's keeper and the monitor's health "
                "checks query the standby, and a standby that refuses them is failed",
                "remove it (PostgreSQL's default is on)",
            )
        return self

    @model_validator(mode="after")
    def failover_secrets(self):
        if not self.postgresql_replication_group:
            return self
        if not self.postgresql_replication_password:
            raise _finding(
                "postgresql_replication_password",
                "a password when the host replicates (postgresql_replication_group): "
                "the standbys log in to the primary by SCRAM only",
                "set it in the environment's vault",
            )
        return self

    @model_validator(mode="after")
    def databases(self):
        for kind in ("name", "user"):
            names = [getattr(d, kind) for d in self.postgresql_databases]
            if len(set(names)) != len(names):
                raise _finding(
                    "postgresql_databases",
                    f"one entry per database and a user of its own (a {kind} repeats: each "
                    "database is one PgBouncer pool, sized for its one user)",
                    "give each database its own name and user",
                )
        if reserved := [d.name for d in self.postgresql_databases if d.name in PG_RESERVED]:
            raise _finding(
                "postgresql_databases",
                f"an app database, not {reserved[0]} (PostgreSQL's own: every new database "
                "copies template1, and postgres is the maintenance database)",
                "name the database after the app, for example demo",
            )
        if managed := sorted(set(self.postgresql_extra_config) & PG_MANAGED):
            raise _finding(
                f"postgresql_extra_config.{managed[0]}",
                "a setting the role does not own (the role sets listening, files, "
                "authentication and sizes from its own variables; an override here would "
                "open the server or break PgBouncer's pools)",
                "use the role's own variable (postgresql_max_connections, "
                "postgresql_shared_buffers, ...) or leave it to the role",
            )
        if any(d.user == "postgres" for d in self.postgresql_databases):
            raise _finding(
                "postgresql_databases",
                "an app user that is not the superuser postgres",
                "name the database's user after the app, for example demo",
            )
        return self


class PostgresqlMonitor(Role):
    """pg_auto_failover's monitor: which database hosts it watches, and how fast it
    declares a primary gone (derive.failover_timeouts turns the three into its settings
    and the keepers' fencing timeout)."""

    postgresql_monitor_port: Port
    postgresql_monitor_databases_group: Group
    postgresql_monitor_password: Secret
    postgresql_monitor_health_check_period: Annotated[int, Field(ge=1, le=60)]
    postgresql_monitor_unhealthy_timeout: Annotated[int, Field(ge=2, le=600)]
    postgresql_monitor_demote_timeout: Annotated[int, Field(ge=4, le=600)]

    @model_validator(mode="after")
    def timing(self):
        if (
            self.postgresql_monitor_unhealthy_timeout
            < 2 * self.postgresql_monitor_health_check_period
        ):
            raise _finding(
                "postgresql_monitor_unhealthy_timeout",
                "at least two health-check periods (postgresql_monitor_health_check_period): "
                "one lost check would otherwise fail the primary over",
                f"raise it to {2 * self.postgresql_monitor_health_check_period}",
            )
        return self


class Pgbackrest(Role):
    """pgBackRest on a database host with a repository, and on the repository host. The
    rules between hosts (which host keeps whose repository, the TLS material each side
    needs, a passphrase on the repository) are webtier.checks.invariants.backups."""

    pgbackrest_repository_group: Literal[""] | Group
    pgbackrest_archive_timeout: Annotated[int, Field(ge=1, le=3600)]
    pgbackrest_port: Port
    pgbackrest_tls_ca_cert: Pem
    pgbackrest_tls_cert: Pem
    pgbackrest_tls_key: PemKey
    pgbackrest_process_max: Annotated[int, Field(ge=1, le=64)]
    pgbackrest_repository_path: AbsPath
    pgbackrest_cipher_pass: Annotated[Secret, Field(repr=False)]
    pgbackrest_retention_full: Annotated[int, Field(ge=1, le=9999)]
    pgbackrest_retention_diff: Annotated[int, Field(ge=1, le=9999)]
    pgbackrest_full_schedule: Calendar
    pgbackrest_diff_schedule: Calendar
    pgbackrest_schedule_spread: Timespan


# Forward references of the nested classes (declared inside Nginx).
for _cls in (Nginx.Upstream, Nginx.Location, Nginx.Site):
    _cls.model_rebuild()
Nginx.model_rebuild()

#: Each role's model, by role name (the directories under roles/); webtier: the host's own.
MODELS: dict[str, type[Role]] = {
    "webtier": Webtier,
    "kernel_tuning": KernelTuning,
    "firewall": Firewall,
    "python_app": PythonApp,
    "gunicorn": Gunicorn,
    "uwsgi": Uwsgi,
    "nginx": Nginx,
    "redis": Redis,
    "celery_worker": CeleryWorker,
    "postgresql": Postgresql,
    "postgresql_monitor": PostgresqlMonitor,
    "pgbackrest": Pgbackrest,
}


#: Plain Jinja with Ansible's `default` behaviour for the role defaults' expressions.
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _where(loc: tuple) -> str:
    text = str(loc[0])
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _at(value: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return value
    return value


#: Pydantic's own messages for the union members and wrappers a reader does not need.
_NOISE = re.compile(r"^(Value error, |Assertion failed, )")


#: A fix for pydantic's own errors, by error type (the checkers above bring their own).
_FIXES = {
    "list_type": "write a YAML list, e.g. [a, b], even for one entry",
    "dict_type": "write a YAML mapping (name: value)",
    "int_type": "write a whole number without quotes",
    "int_parsing": "write a whole number without quotes",
    "int_from_float": "write a whole number",
    "bool_type": "write true or false without quotes (on the command line: -e '{\"name\": false}')",
    "string_type": "write a string",
    "missing": "set it",
    "extra_forbidden": "remove it, or check its spelling against the role's README",
    "literal_error": "use one of the values named",
}


def findings(host: str, role: str, values: Mapping[str, Any]) -> list[Finding]:
    """``values`` (the role's defaults under the host's variables) against the role's
    model: one finding per wrong variable, each naming the rule and the fix. A default
    that is a Jinja expression over the host's own variables (python_app_root:
    /srv/{{ python_app_name }}) is judged as it resolves; one that does not resolve
    from them (or that an engine could not resolve: :class:`Unresolved`) is refused,
    naming the variable: no value escapes the model by holding an expression."""
    model = MODELS[role]
    context = {"inventory_hostname": host, **values}
    judged, unresolved = {}, {}
    for name, value in values.items():
        if name not in model.model_fields:
            continue
        if isinstance(value, Unresolved):
            unresolved[name] = value.error
            continue
        if not _templated(value):
            judged[name] = value
            continue
        try:
            judged[name] = _JINJA.from_string(value).render(context)
        except jinja2.TemplateError as error:
            unresolved[name] = str(error)
        else:
            if _templated(judged[name]):  # an expression that yields another one
                unresolved[name] = "it resolves to another expression"
    refused = [
        Finding(
            host,
            name,
            shown(name, values[name]) if not isinstance(values[name], Unresolved) else "(?)",
            f"a value the {role} role's model can check; it does not resolve: {error}",
            "write the value itself, or an expression over the inventory's own variables",
        )
        for name, error in unresolved.items()
    ]
    try:
        model.model_validate({**judged, **dict.fromkeys(unresolved, "")})
    except ValidationError as error:
        return refused + [
            f for f in _from_errors(host, role, judged, error) if f.variable not in unresolved
        ]
    return refused


def _from_errors(host, role, values, error: ValidationError) -> list[Finding]:
    found: dict[str, Finding] = {}
    for item in error.errors(include_url=False):
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, _Refusal):
            name = cause.variable
            path = tuple(
                int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", name)
            )
            value = shown(name, _at(values, path) if path[0] in values else "(unset)")
            found.setdefault(name, Finding(host, name, value, cause.rule, cause.fix))
            continue
        loc = tuple(p for p in item["loc"] if not _is_branch(p))
        if not loc:
            continue
        where = _where(loc)
        if where in found:  # one finding per variable: the first branch that explains it
            continue
        rule, _, fix = _NOISE.sub("", item["msg"]).partition("; ")
        ctx = item.get("ctx") or {}
        if item["type"] in ("greater_than_equal", "less_than_equal"):
            bound = ctx.get("ge", ctx.get("le"))
            rule = f"{'at least' if 'ge' in ctx else 'at most'} {bound}"
            fix = f"set {where} to {bound} or {'more' if 'ge' in ctx else 'less'}"
        found[where] = Finding(
            host,
            where,
            shown(where, _at(values, loc)) if loc[0] in values else "(unset)",
            f"the {role} role's model: {rule}",
            fix or _FIXES.get(item["type"], f"see roles/{role}/meta/argument_specs.yml"),
        )
    return list(found.values())


def _is_branch(part: Any) -> bool:
    """Pydantic's labels in an error's location that are not the inventory's keys: union
    members (``int``, ``literal['auto']``, ``function-after[...]``) and ``[key]`` (the
    error is in a mapping's key, which the location already names)."""
    return isinstance(part, str) and (
        part in {"int", "str", "bool", "float", "none", "[key]"}
        or part.startswith(("literal[", "constrained-", "function-", "list[", "dict[", "nullable["))
    )
