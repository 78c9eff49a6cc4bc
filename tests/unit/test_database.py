"""The database tier (postgresql role): its sizing rules, the SCRAM verifiers both
engines write, the app's DATABASE_URL, the firewall's rule and the capacity checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest

from webtier import TEMPLATES
from webtier.checks import invariants
from webtier.files import firewall, postgresql
from webtier.files.app import app_database_env, app_first_host, release_command
from webtier.model import capacity, derive

GROUPS = {
    "all": ["lb1", "app1", "worker1", "db1"],
    "loadbalancers": ["lb1"],
    "appservers": ["app1"],
    "app_gunicorn": ["app1"],
    "workers": ["worker1"],
    "databases": ["db1"],
}
PASSWORD = "correct horse"  # pragma: allowlist secret (a test's own)
DATABASES = [{"name": "shop", "user": "shop", "password": PASSWORD}]


def hostvars(**db):
    app = {
        "webtier_cpus": 2,
        "webtier_app_server": "gunicorn",
        "gunicorn_worker_class": "gthread",
        "gunicorn_workers": 4,
        "gunicorn_threads": 8,
        "gunicorn_worker_connections": 4096,
        "python_app_name": "shop",
        "python_app_database_group": "databases",
    }
    return {
        "lb1": {"nginx_worker_connections": 1024},
        "app1": app,
        "worker1": {
            "webtier_cpus": 2,
            "python_app_name": "shop",
            "python_app_database_group": "databases",
        },
        "db1": {"postgresql_databases": DATABASES, **db},
    }


def findings(**db):
    return [str(f) for f in capacity.check(hostvars(**db), GROUPS)]


#: What PostgreSQL 15 stored for `CREATE ROLE shop PASSWORD 'correct horse'` (its own
#: random salt): the role keeps such a verifier while it is one of the password.
FROM_POSTGRESQL = (
    "SCRAM-SHA-256$4096:0z2rMvXLgtpuSi8BnDPr9g==$A9vDv6jjntdTtLYEyUnpGdWdU4xFndFTKq6iEfSC7os="
    ":gMnEZVTtSz6l84/BhmM7oszDM4SEDQz/dBYeHG15Qnw="
)
HORSE, STAPLE = "correct horse", "battery staple"
SHOP = {"name": "shop", "user": "shop", "password": HORSE}


def test_the_verifier_is_what_postgresql_checks_a_scram_proof_against():
    """RFC 5802: the server keeps StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
    ServerKey; a client that knows the password derives the same from the salt."""
    verifier = postgresql.scram_verifier("correct horse")
    match = re.fullmatch(r"SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)", verifier)
    assert match
    salt, stored, server = (base64.b64decode(g) for g in match.groups())
    salted = hashlib.pbkdf2_hmac("sha256", b"correct horse", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert hashlib.sha256(client_key).digest() == stored
    assert hmac.new(salted, b"Server Key", hashlib.sha256).digest() == server


def test_each_verifier_has_its_own_random_salt():
    """No salt derived from the password: the same password gives another verifier each
    time it is set (in each environment), and the verifier does not hold it."""
    one, two = (
        postgresql.scram_verifier("correct horse"),
        postgresql.scram_verifier("correct horse"),
    )
    assert one != two
    assert one.split("$")[1] != two.split("$")[1]
    assert "correct horse" not in one


@pytest.mark.parametrize(
    ("verifier", "password", "matches"),
    [
        (FROM_POSTGRESQL, "correct horse", True),
        (FROM_POSTGRESQL, "battery staple", False),
        (FROM_POSTGRESQL.replace("4096:", "4097:"), "correct horse", False),
        ("md5" + "0" * 32, "correct horse", False),
        ("", "correct horse", False),
        (None, "correct horse", False),
    ],
)
def test_a_stored_verifier_is_checked_against_the_password(verifier, password, matches):
    assert postgresql.scram_matches(verifier, password) is matches


def test_the_stored_verifier_is_kept_while_its_password_matches():
    """A re-run changes nothing (and a replica keeps the primary's verifier); a new
    password, a user the server does not have or a verifier of another form get a new
    one, made once for the run."""
    assert postgresql.kept_verifiers([SHOP], {"shop": FROM_POSTGRESQL}) == {"shop": FROM_POSTGRESQL}
    for stored in ({}, {"shop": "md5" + "0" * 32}, {"shop": None}):
        made = postgresql.kept_verifiers([SHOP], stored)["shop"]
        assert postgresql.scram_matches(made, "correct horse")
    rotated = postgresql.kept_verifiers([{**SHOP, "password": STAPLE}], {"shop": FROM_POSTGRESQL})
    assert rotated["shop"] != FROM_POSTGRESQL
    assert postgresql.scram_matches(rotated["shop"], "battery staple")


def test_the_server_and_pgbouncer_get_the_verifier_chosen_for_the_run():
    """What the deploy chose (Facts.postgresql_verifiers) is what userlist.txt holds."""
    users = postgresql.postgresql_users([SHOP], {"shop": FROM_POSTGRESQL})
    assert users == [{"name": "shop", "verifier": FROM_POSTGRESQL}]


@pytest.mark.parametrize(
    ("memtotal", "declared", "expected"),
    [
        (4096, None, {"shared_buffers": "1024MB", "effective_cache_size": "3072MB"}),
        (24000, 1024, {"shared_buffers": "256MB", "effective_cache_size": "768MB"}),
        (65536, None, {"maintenance_work_mem": "1024MB"}),  # capped at 1 GiB
    ],
)
def test_auto_memory_follows_the_hosts_ram(memtotal, declared, expected):
    sizes = derive.postgresql_memory("auto", "auto", "auto", memtotal, declared)
    assert expected.items() <= sizes.items()
    assert derive.postgresql_memory("2GB", "auto", "auto", 4096)["shared_buffers"] == "2GB"


@pytest.mark.parametrize(
    ("memtotal_kb", "limit", "expected_mb"),
    [
        (24 * 1024 * 1024, "max", 24 * 1024),  # cgroup v2, no limit
        (24 * 1024 * 1024, str(9223372036854771712), 24 * 1024),  # cgroup v1, no limit
        (24 * 1024 * 1024, str(2 * 1024**3), 2048),  # a container given 2 GiB
        (1024 * 1024, str(8 * 1024**3), 1024),  # a limit above the RAM changes nothing
        (1024 * 1024, "", 1024),  # no cgroup file could be read
    ],
)
def test_the_memory_a_host_grants_is_its_cgroup_limit_when_lower(memtotal_kb, limit, expected_mb):
    assert derive.granted_memory_mb(memtotal_kb, limit) == expected_mb


def test_the_app_reaches_the_first_database_host_through_pgbouncer():
    env, secret, ca = app_database_env("databases", "", GROUPS, hostvars(), "shop")
    assert env == {"DATABASE_URL": "postgresql://shop@db1:6432/shop"}
    assert secret == {"DATABASE_PASSWORD": PASSWORD}
    assert ca == ""
    assert app_database_env("", "", GROUPS, hostvars()) == ({}, {}, "")


def test_with_replicas_the_app_names_every_host_and_asks_for_the_writable_one():
    """libpq's multi-host URL: a new connection after a failover reaches the new
    primary (the one whose server takes writes) with no inventory change."""
    groups = {**GROUPS, "all": [*GROUPS["all"], "db2"], "databases": ["db1", "db2"]}
    two = {**hostvars(), "db2": {"postgresql_databases": DATABASES}}
    env, secret, _ = app_database_env("databases", "", groups, two, "shop")
    assert env == {
        "DATABASE_URL": "postgresql://shop@db1:6432,db2:6432/shop?target_session_attrs=read-write"
    }
    assert secret == {"DATABASE_PASSWORD": PASSWORD}


def test_with_tls_the_app_verifies_pgbouncer_against_the_tiers_ca():
    """postgresql_pgbouncer_tls: libpq checks the certificate and the host's name
    (verify-full) against the CA python_app writes beside the app's env files."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    tls = hostvars(postgresql_pgbouncer_tls=True, postgresql_pgbouncer_tls_ca_cert=pem)
    env, _, ca = app_database_env("databases", "", GROUPS, tls, "shop")
    assert env["DATABASE_URL"] == (
        "postgresql://shop@db1:6432/shop"
        "?sslmode=verify-full&sslrootcert=/etc/webtier/apps/shop.database-ca.crt"
    )
    assert ca == pem


def test_pgbouncer_is_admitted_from_the_client_tiers_only():
    rules = firewall.plan("db1", GROUPS, hostvars())
    assert rules == [
        {
            "ports": [6432],
            "sources": ["app1", "worker1"],
            "why": "PgBouncer, from appservers, workers",
        }
    ]


def test_a_tier_without_callers_admits_nobody():
    groups = {"all": ["db1"], "databases": ["db1"]}
    assert firewall.plan("db1", groups, {"db1": {}}) == []


def test_the_sound_tier_has_no_finding_and_counts_its_server_connections():
    assert findings() == []
    (db,) = capacity.model(hostvars(), GROUPS).tier("db")
    assert (db.concurrency, db.held) == (1000, 25)  # max_client_conn; 1 x (20 + 5)


def test_pools_beyond_max_connections_are_refused():
    (found,) = findings(postgresql_max_connections=30)
    assert "postgresql_pgbouncer_default_pool_size=20 breaks postgresql_max_connections=30" in found
    assert "raise postgresql_max_connections to 33" in found


def test_the_app_threads_and_the_workers_must_fit_pgbouncers_clients():
    (found,) = findings(postgresql_pgbouncer_max_client_conn=16)
    # app1: 4 workers x 8 threads; worker1: 2 processes (one per CPU)
    assert "the 34 connections the app tier and the workers may hold" in found


def test_an_app_that_names_no_database_does_not_count():
    hv = hostvars(postgresql_pgbouncer_max_client_conn=16)
    hv["app1"]["python_app_database_group"] = ""
    assert [str(f) for f in capacity.check(hv, GROUPS)] == []


def test_the_app_must_name_a_database_the_tier_has():
    hv = hostvars()
    v = {**hv["app1"], "python_app_database": "blog"}
    (found,) = invariants.database_group("app1", v, hv, GROUPS)
    assert "python_app_database=blog breaks a database of db1's postgresql_databases (shop)" in str(
        found
    )


def test_only_listener_lines_need_a_restart():
    ini = "[pgbouncer]\nlisten_addr = *\nlisten_port = 6432\npool_mode = transaction\n"
    assert postgresql.pgbouncer_listeners(ini) == ["listen_addr = *", "listen_port = 6432"]


def test_the_once_commands_run_on_the_apps_first_host():
    groups = {**GROUPS, "all": ["app1", "app2", "worker1"], "app_gunicorn": ["app1", "app2"]}
    hv = {
        "app1": {"python_app_name": "other"},
        "app2": {"python_app_name": "shop"},
        "worker1": {"python_app_name": "shop"},
    }
    assert app_first_host("shop", groups, hv) == "app2"


def test_a_release_command_runs_as_the_app_in_the_new_releases_source():
    argv = release_command(
        "python manage.py migrate --noinput",
        "shop",
        "shop",
        "/srv/shop/releases/7",
        "/srv/shop/releases/7/venv",
        "/etc/webtier/apps",
    )
    assert argv[:5] == ["systemd-run", "--quiet", "--wait", "--pipe", "--collect"]
    assert {"--uid=shop", "--gid=shop", "--working-directory=/srv/shop/releases/7/src"} <= set(argv)
    # the app's environment, and the release's own source before the running one's
    assert "--property=EnvironmentFile=/etc/webtier/apps/shop.env" in argv
    assert "--property=EnvironmentFile=-/etc/webtier/apps/shop.secret.env" in argv
    assert "--setenv=PYTHONPATH=/srv/shop/releases/7/src" in argv
    assert argv[-4:] == [
        "/srv/shop/releases/7/venv/bin/python",
        "manage.py",
        "migrate",
        "--noinput",
    ]


def test_a_release_command_runs_in_the_apps_sandbox_and_expands_no_variable():
    """The transient unit gets the sandbox of the app's own units (the one macro), may
    write only its release, and a $VAR in the command reaches the program as written:
    the service manager would expand it from the env files, secrets included."""
    argv = release_command(
        "python manage.py shell -c print('$SECRET_KEY${DATABASE_PASSWORD}')",
        "shop",
        "shop",
        "/srv/shop/releases/7",
        "/srv/shop/releases/7/venv",
        "/etc/webtier/apps",
    )
    unit = (TEMPLATES / "etc/gunicorn/gunicorn.service.j2").read_text()
    assert "{{ sandbox() }}" in unit
    for setting in ("ProtectSystem=strict", "NoNewPrivileges=true", "CapabilityBoundingSet="):
        assert f"--property={setting}" in argv
    assert "--property=ReadWritePaths=/srv/shop/releases/7" in argv
    assert argv[-1] == "print('$$SECRET_KEY$${DATABASE_PASSWORD}')"


def test_a_render_which_read_no_server_writes_no_verifier():
    """The render command (and both engines' parity test) reach no host: the verifier
    is the deploy's choice, so the file says so instead of inventing one."""
    assert postgresql.postgresql_users([SHOP]) == [{"name": "shop", "verifier": postgresql.UNREAD}]


def test_every_host_of_a_database_tier_serves_the_first_ones_databases():
    """The app's URL names every host of the tier: a replica with other databases, or
    another password or TLS switch, is refused, naming no password."""
    groups = {**GROUPS, "all": [*GROUPS["all"], "db2"], "databases": ["db1", "db2"]}
    same = {**hostvars(), "db2": {"postgresql_databases": DATABASES}}
    assert [f for f in invariants.check(same, groups) if f.host == "db2"] == []
    other = [{**DATABASES[0], "password": STAPLE}]
    differ = {
        **hostvars(),
        "db2": {"postgresql_databases": other, "postgresql_pgbouncer_tls": True},
    }
    found = [str(f) for f in invariants.check(differ, groups) if f.host == "db2"]
    assert len(found) == 2, found
    assert "db2: postgresql_databases=['shop/shop'] breaks db1's (['shop/shop']" in found[0]
    assert STAPLE not in " ".join(found)
    assert PASSWORD not in " ".join(found)
    assert "db2: postgresql_pgbouncer_tls=true breaks db1's (False): every host" in found[1]
