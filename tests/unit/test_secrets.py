"""The secret scan (webtier.checks.secretscan): what it finds, what it lets pass, and that the
repository itself scans clean against its reviewed baseline.

Planted secrets are assembled at run time, so that this file itself holds none.
"""

from __future__ import annotations

import pytest

from webtier import ROOT
from webtier.checks import secretscan


def test_the_repository_scans_clean_outside_the_sandbox():
    names = secretscan.repository_files()
    assert len(names) > 100  # the scan saw the repository, not an empty list
    assert "inventory/sandbox/group_vars/all/secrets.yml" in names  # and left it out itself
    assert secretscan.scan(ROOT, names) == []


PW = "Zq" + "7-kept-out-of-this-file"
PLANTED = [
    # (file, text, what the finding says)
    (".env", f"REDIS_URL=redis://:{PW}@redis1:6379/0\n", "Password in a URL"),
    ("app.env", f"DATABASE_URL=postgres://app:{PW}@db1/app\n", "Password in a URL"),
    ("redis.ini", f"[redis]\nrequirepass = {PW}\n", "Secret-named key with a literal value"),
    ("redis.conf", f"masterauth {PW}\n", "Secret-named key with a literal value"),
    ("sentinel.conf", f"sentinel auth-pass mymaster {PW}\n", "literal value"),
    ("settings.json", f'{{"name": "x", "api-key": "{PW}"}}\n', "Secret-named key"),
    ("group_vars/redis.yml", f"redis_pass: {PW}\n", "Secret-named key with a literal value"),
    ("group_vars/all.yml", f"masterauth: '{PW}'\n", "Secret-named key with a literal value"),
    ("vars.yml", f"app:\n  env:\n    API_KEY: >-\n      {PW}\n", "app.env.API_KEY is a literal"),
    ("key.asc", "-----BEGIN PGP " + "PRIVATE KEY BLOCK-----\nlQOYBF\n", "Private Key"),
    ("id_ed25519", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nAAAA\n", "Private Key"),
    ("deploy.sh", "export AWS=" + "AKIA" + "ABCDEFGHIJKLMNOP\n", "AWS Access Key"),
]


@pytest.mark.parametrize(("name", "text", "says"), PLANTED, ids=[p[0] for p in PLANTED])
def test_the_scan_finds_a_planted_secret(tmp_path, name, text, says):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    findings = secretscan.scan(tmp_path, [name])
    assert any(f.startswith(name) and says in f for f in findings), findings


VAULTED = "!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  " + "6162636465" * 8 + "\n  3132\n"


@pytest.mark.parametrize(
    "text",
    [
        'redis_app_password: "{{ vault_redis_app_password }}"\n',
        'redis_admin_password: ""\n',
        f"redis_admin_password: {VAULTED}other: 1\n",  # an inline vault value
        "REDIS_URL: redis://app:{{ redis_app_password }}@redis1:6379/0\n",
        "nginx_tls_certificate_key: /etc/ssl/private/www.key\n",
        "$ANSIBLE_VAULT;1.2;AES256;production\n" + "6162636465" * 8 + "\n",
        "redis_app_password: >-\n  {{ lookup('ansible.builtin.password', '/tmp/x') }}\n",
    ],
)
def test_the_scan_lets_references_and_vaults_pass(tmp_path, text):
    (tmp_path / "vars.yml").write_text(text)
    assert secretscan.scan(tmp_path, ["vars.yml"]) == []
