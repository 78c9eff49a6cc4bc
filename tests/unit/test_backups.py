"""pgBackRest (issue 36): which host is whose repository, the stanzas and the clients
each side's TLS server admits, the files both engines write from it, the archive
settings the postgresql role takes, the firewall, and what preflight refuses."""

from __future__ import annotations

import configparser

import pytest

from webtier.checks import invariants
from webtier.files import firewall, pgbackrest
from webtier.files.render import render
from webtier.model import schema
from webtier.model.inventory import role_defaults, with_defaults

# A set (db1, db2) and a single server (db3) backed up by one repository, a host (db4)
# whose inventory says it has none.
GROUPS = {
    "databases": ["db1", "db2", "db3", "db4"],
    "dbset": ["db1", "db2"],
    "backups": ["bk1"],
}
CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"  # pragma: allowlist secret
TLS = {"pgbackrest_tls_ca_cert": CERT, "pgbackrest_tls_cert": CERT, "pgbackrest_tls_key": KEY}
PASS = "a-repository-passphrase-of-40-characters"  # pragma: allowlist secret (a test's own)
HOSTVARS = {
    "db1": {"postgresql_replication_group": "dbset", **TLS},
    "db2": {"postgresql_replication_group": "dbset", **TLS},
    "db3": dict(TLS),
    "db4": {"pgbackrest_repository_group": ""},
    "bk1": {"pgbackrest_cipher_pass": PASS, **TLS},
}


def values(host: str, hostvars=HOSTVARS, groups=GROUPS) -> dict:
    """What the role's templates see on ``host``: its variables and the derived plan."""
    v = {
        **role_defaults("postgresql"),
        **role_defaults("pgbackrest"),
        **{"__pgbackrest_tls_dir": "/etc/pgbackrest/tls", "__pgbackrest_pg_port": 5432},
        "inventory_hostname": host,
        **hostvars[host],
    }
    return v | pgbackrest.pgbackrest_derived(host, v, "trixie", groups, hostvars)


def conf(host: str, **kwargs) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    # tls-server-auth repeats: keep every line of it
    text = render("etc/pgbackrest/pgbackrest.conf.j2", values(host, **kwargs))
    lines = [
        line.replace("tls-server-auth=", f"tls-server-auth.{n}=", 1)
        for n, line in enumerate(text.splitlines())
    ]
    parser.read_string("\n".join(lines))
    return parser


def test_a_set_is_one_stanza_backed_up_from_a_standby_and_a_single_server_its_own():
    plan = values("bk1")
    assert plan["__pgbackrest_side"] == "repository"
    assert [(s["name"], s["hosts"], s["standby"]) for s in plan["__pgbackrest_stanzas"]] == [
        ("dbset", ["db1", "db2"], True),
        ("db3", ["db3"], False),
    ]
    parsed = conf("bk1")
    assert parsed["dbset"]["pg1-host"] == "db1"
    assert parsed["dbset"]["pg2-host"] == "db2"
    assert parsed["dbset"]["pg2-path"] == "/var/lib/postgresql/17/main"
    assert parsed["dbset"]["backup-standby"] == "y"
    assert "backup-standby" not in parsed["db3"]
    assert parsed["global"]["repo1-cipher-type"] == "aes-256-cbc"
    assert parsed["global"]["repo1-cipher-pass"] == PASS
    # each database host may reach its own stanza only
    auth = sorted(v for k, v in parsed["global"].items() if k.startswith("tls-server-auth"))
    assert auth == ["db1=dbset", "db2=dbset", "db3=db3"]


def test_a_database_host_archives_to_its_repository_which_alone_may_reach_its_server():
    parsed = conf("db2")
    assert parsed["global"]["repo1-host"] == "bk1"
    assert parsed["global"]["repo1-host-type"] == "tls"
    assert "repo1-cipher-pass" not in parsed["global"]  # only the repository holds it
    auth = [v for k, v in parsed["global"].items() if k.startswith("tls-server-auth")]
    assert auth == ["bk1=dbset"]
    assert parsed.sections() == ["global", "dbset"]
    assert pgbackrest.archive("db2", values("db2"), GROUPS) == {
        "stanza": "dbset",
        "command": "pgbackrest --stanza=dbset archive-push %p",
        "timeout": 60,
    }


def test_a_database_host_without_a_repository_gets_nothing():
    plan = values("db4")
    assert plan["__pgbackrest_side"] is None
    assert pgbackrest.archive("db4", values("db4"), GROUPS) is None
    assert pgbackrest.peers("db4", GROUPS, HOSTVARS) == []


def test_the_server_archives_through_pgbackrest_only_with_a_repository():
    def settings(host: str) -> str:
        v = {**values(host), "postgresql_databases": [], "__postgresql_version": 17}
        v |= {
            "__postgresql_failover": None,
            "__postgresql_memory": dict.fromkeys(
                ("shared_buffers", "effective_cache_size", "maintenance_work_mem"), "1MB"
            ),
            "__postgresql_archive": pgbackrest.archive(host, v, GROUPS),
        }
        return render("etc/postgresql/webtier.conf.j2", v)

    assert "archive_command = 'pgbackrest --stanza=db3 archive-push %p'" in settings("db3")
    assert "archive_timeout = 60" in settings("db3")
    assert "archive_" not in settings("db4")


def test_the_firewall_admits_each_side_to_the_other_on_pgbackrests_port_only():
    hostvars = {h: dict(v) for h, v in HOSTVARS.items()}

    def rule(host):
        return [r for r in firewall.plan(host, GROUPS, hostvars) if r["ports"] == [8432]]

    assert [r["sources"] for r in rule("bk1")] == [["db1", "db2", "db3"]]
    assert [r["sources"] for r in rule("db1")] == [["bk1"]]
    assert rule("db4") == []


def findings(hostvars=HOSTVARS, groups=GROUPS) -> list[tuple[str, str]]:
    found = []
    for host in hostvars:
        roles = ["pgbackrest"] + (["postgresql"] if host in groups["databases"] else [])
        v = with_defaults(roles, {"inventory_hostname": host, **hostvars[host]})
        found += [(f.host, f.variable) for f in invariants.backups(host, v, hostvars, groups)]
    return found


def test_the_sound_inventory_passes():
    assert findings() == []


@pytest.mark.parametrize(
    ("case", "change", "expected"),
    [
        (
            "the repository is a database host",
            {"groups": {"backups": ["db3"]}},
            ("db1", "pgbackrest_repository_group"),
        ),
        (
            "the repository group's host is not in backups",
            {"hostvars": {"db3": {"pgbackrest_repository_group": "dbset", **TLS}}},
            ("db3", "pgbackrest_repository_group"),
        ),
        (
            "a set split over two repositories",
            {
                "groups": {"backups": ["bk1", "bk2"], "second": ["bk2"]},
                "hostvars": {
                    "db2": {
                        "postgresql_replication_group": "dbset",
                        "pgbackrest_repository_group": "second",
                        **TLS,
                    },
                    "bk2": {"pgbackrest_cipher_pass": PASS, **TLS},
                },
            },
            ("db1", "pgbackrest_repository_group"),
        ),
        (
            "a named group the inventory lacks",
            {"hostvars": {"db3": {"pgbackrest_repository_group": "nowhere", **TLS}}},
            ("db3", "pgbackrest_repository_group"),
        ),
        (
            "a short passphrase",
            {"hostvars": {"bk1": {"pgbackrest_cipher_pass": "short", **TLS}}},
            ("bk1", "pgbackrest_cipher_pass"),
        ),
        (
            "full and differential at the same time",
            {
                "hostvars": {
                    "bk1": {
                        "pgbackrest_cipher_pass": PASS,
                        "pgbackrest_diff_schedule": "Sun *-*-* 01:00:00",
                        **TLS,
                    }
                }
            },
            ("bk1", "pgbackrest_diff_schedule"),
        ),
        (
            "a database host without its key",
            {"hostvars": {"db3": {**TLS, "pgbackrest_tls_key": ""}}},
            ("db3", "pgbackrest_tls_key"),
        ),
        (
            "a repository nobody names",
            {
                "groups": {"backups": ["bk1", "bk2"]},
                "hostvars": {"bk2": {"pgbackrest_cipher_pass": PASS, **TLS}},
            },
            ("bk2", "pgbackrest_repository_group"),
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_preflight_refuses(case, change, expected):
    groups = {**GROUPS, **change.get("groups", {})}
    hostvars = {**HOSTVARS, **change.get("hostvars", {})}
    assert expected in findings(hostvars, groups), case


def test_the_model_refuses_a_schedule_systemd_would_not_read():
    v = {**role_defaults("pgbackrest"), "pgbackrest_full_schedule": "every sunday"}
    assert [f.variable for f in schema.findings("bk1", "pgbackrest", v)] == [
        "pgbackrest_full_schedule"
    ]
    v = {**role_defaults("pgbackrest"), "pgbackrest_full_schedule": "Sun *-*-* 01:00:00\nx"}
    assert [f.variable for f in schema.findings("bk1", "pgbackrest", v)] == [
        "pgbackrest_full_schedule"
    ]
    assert schema.findings("bk1", "pgbackrest", role_defaults("pgbackrest")) == []
