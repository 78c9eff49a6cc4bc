"""The typed model (webtier.model.schema) against what Ansible reads of the same roles: their
argument specs (ansible-doc, and the check when a role runs alone) and their defaults."""

from __future__ import annotations

import types
import typing

import pytest

from webtier import ROOT
from webtier.checks import preflight
from webtier.model import schema
from webtier.model.inventory import role_defaults

ROLES = [r for r in schema.MODELS if r != "webtier"]
#: What an inventory must give each role beyond its defaults (the vault's passwords, the app).
REQUIRED = {
    "python_app": {
        "python_app_name": "demo",
        "python_app_src": "apps/demo_flask",
        "python_app_entrypoint": "m:app",
    },
    "redis": {"redis_app_users": [{"name": "demo", "password": "a"}], "redis_admin_password": "b"},
    "celery_worker": {"celery_worker_app": "m:app"},
}


def literal_values(annotation) -> set | None:
    """The allowed values of a Literal annotation, or of an Optional one; None for any
    other (a Literal beside a free form, such as "" or a URL, is not a list of choices)."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(members) == 1:
        return literal_values(members[0])
    return None


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_names_exactly_the_models_variables(role):
    assert set(preflight.role_options(role)) == set(schema.MODELS[role].model_fields)


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_choices_are_the_models(role):
    for name, option in preflight.role_options(role).items():
        allowed = literal_values(schema.MODELS[role].model_fields[name].annotation)
        if "choices" in option:
            assert allowed == set(option["choices"]), name
        elif option.get("type") not in ("raw", "list"):
            assert allowed is None, f"{name}: the model has choices the spec lacks"


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_types_take_the_models_values(role):
    """Each variable's default passes the model and is of the spec's type."""
    kinds = {"int": int, "bool": bool, "str": str, "list": list, "dict": dict}
    defaults = role_defaults(role)
    assert schema.findings("host", role, {**defaults, **REQUIRED.get(role, {})}) == []
    for name, option in preflight.role_options(role).items():
        kind = kinds.get(option.get("type"))
        if kind and name in defaults:
            assert isinstance(defaults[name], kind), (name, defaults[name])


def test_every_role_prefix_is_checked_for_unknown_names():
    assert set(preflight.PREFIXES) == {f"{r}_" for r in ["webtier", *ROLES]}
    found = preflight.arguments("h", {"firewall_ssh_prot": 22}, {"all": ["h"]})
    assert [f.variable for f in found] == ["firewall_ssh_prot"]
    assert "did you mean firewall_ssh_port?" in str(found[0])


def test_another_roles_variables_in_a_shared_inventory_are_left_alone():
    """A shared inventory may hold another project's role variables (nginx_vhosts of
    another nginx role are this project's prefix, so they are reported; a prefix that is
    not this project's is not)."""
    found = preflight.arguments("h", {"apache_vhosts": [], "certbot_email": "x"}, {"all": ["h"]})
    assert found == []


@pytest.mark.parametrize(
    ("role", "values", "variable", "says"),
    [
        ("nginx", {"nginx_client_max_body_size": "10 MB"}, "nginx_client_max_body_size", "10m"),
        (
            "nginx",
            {
                "nginx_sites": [
                    {
                        "name": "a",
                        "server_name": "a.example; return 200",
                        "locations": [{"path": "/", "return": "204"}],
                    }
                ]
            },
            "nginx_sites[0].server_name",
            "ends the directive",
        ),
        (
            "gunicorn",
            {"gunicorn_forwarded_allow_ips": ['10.0.0.1"; import os; "']},
            "gunicorn_forwarded_allow_ips[0]",
            "IP address or network",
        ),
        (
            "gunicorn",
            {"gunicorn_forwarded_allow_ips": ["10.0.0.0/8", "*"]},
            "gunicorn_forwarded_allow_ips",
            "gunicorn_forwarded_allow_any: true",
        ),
        (
            "nginx",
            {"nginx_tls_protocols": ["TLSv1.1", "TLSv1.2"]},
            "nginx_tls_protocols",
            "TLSv1.1 are deprecated",
        ),
        ("python_app", {"python_app_user": "root"}, "python_app_user", "every right"),
        (
            "redis",
            {
                "redis_tls": True,
                "redis_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
                "redis_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
            },
            "redis_tls_key",
            "vault",
        ),
        ("python_app", {"python_app_name": "../x"}, "python_app_name", "lower-case name"),
        (
            "redis",
            {"redis_auth": False, "redis_bind": ["private"]},
            "redis_auth",
            "beyond loopback",
        ),
        (
            "redis",
            {"redis_admin_password": "", "redis_app_users": [{"name": "demo", "password": "x"}]},
            "redis_admin_password",
            "vault",
        ),
    ],
)
def test_the_model_names_the_variable_the_rule_and_the_fix(role, values, variable, says):
    base = REQUIRED.get(role, {})
    found = schema.findings("h1", role, {**role_defaults(role), **base, **values})
    # The first finding is the variable given (derived ones may follow: a bad app name
    # also makes a bad user and root directory).
    assert found, values
    assert found[0].variable == variable, found
    text = str(found[0])
    assert text.startswith(f"h1: {variable}=")
    assert "Fix: " in text
    assert says in text


@pytest.mark.parametrize(
    ("role", "values"),
    [
        ("gunicorn", {"gunicorn_forwarded_allow_ips": ["*"], "gunicorn_forwarded_allow_any": True}),
        ("nginx", {"nginx_tls_protocols": ["TLSv1", "TLSv1.2"], "nginx_tls_allow_legacy": True}),
    ],
)
def test_a_refused_minimum_has_an_explicit_documented_override(role, values):
    base = REQUIRED.get(role, {})
    assert schema.findings("h1", role, {**role_defaults(role), **base, **values}) == []
    override = next(name for name, value in values.items() if value is True)
    assert override in (ROOT / "roles" / role / "defaults" / "main.yml").read_text()
