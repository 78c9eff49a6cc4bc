"""The collection artifact is built from an allow-list: the files git tracks.

A checkout collects what never belongs in a published artifact: a stray .env, a private
key, a vault password file, rendered configs. The test plants each in a clone's working
tree (untracked, as they would be) and builds with the project's own command
(``make collection`` runs scripts/build-collection.sh): the artifact holds none of them,
and still holds what the collection ships.
"""

from __future__ import annotations

import secrets
import subprocess
import tarfile

from webtier import ROOT

#: What every planted file holds: a word no tracked file has by chance.
MARK = f"planted-{secrets.token_hex(8)}"
KEY = "-----BEGIN " + f"PRIVATE KEY-----\n{MARK}\n"  # (assembled: no key in the repository)
PLANTED = {
    ".env": f"APP_SETTING={MARK}\n",
    "roles/nginx/files/site.key": KEY,
    ".vault_pass": f"{MARK}\n",  # pragma: allowlist secret (a file name)
    "inventory/production/.vault-password": f"{MARK}\n",  # pragma: allowlist secret (a file name)
    "reports/render/sandbox/lb1/etc/nginx/nginx.conf": f"{MARK}\n",
    "plugins/module_utils/rendered.conf": f"{MARK}\n",
    "templates/etc/nginx/nginx.conf.j2.orig": f"{MARK}\n",
}


def test_the_artifact_holds_tracked_files_only(tmp_path):
    clone = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    for name, text in PLANTED.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text(text)
    out = tmp_path / "out"
    subprocess.run(
        [ROOT / "scripts/build-collection.sh", out, clone],
        check=True,
        capture_output=True,
    )
    (artifact,) = out.glob("webtier-stack-*.tar.gz")
    with tarfile.open(artifact) as tar:
        names = set(tar.getnames())
        contents = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert not {name for name in PLANTED if name in names}
    assert MARK.encode() not in contents
    # and what the collection ships is there
    assert "roles/nginx/tasks/main.yml" in names
    assert "templates/etc/nginx/nginx.conf.j2" in names
