"""A new environment: an inventory skeleton and an encrypted vault (``webtier-new-env``).

    webtier-new-env inventory/staging2 [--vault-password-file ~/.vault/staging2]
    webtier-new-env inventory/trial --local [--port 8200]
    webtier-new-env inventory/prod-eu --from inventory/production

writes ``inventory/<name>/`` from the collection's ``files/new-env/`` (one load
balancer, one Gunicorn app server, one Redis, SSH as a deploy user; with ``--local``,
containers of this machine that ``playbooks/sandbox.yml`` makes and removes, the load
balancer published on 127.0.0.1:PORT) and
``group_vars/all/vault.yml`` with new random Redis passwords, encrypted as
``ansible-vault`` does (:mod:`webtier.model.vault`) under the vault id ``<name>``. The
password file is made (random, mode 0600) when it does not exist. Every value only the
user knows is ``CHANGE_ME``, which preflight refuses until it is filled
(:data:`webtier.checks.preflight.PLACEHOLDER`).

With ``--from``, the new environment is a copy of another one (the repository's staging
or production examples, whose vaults are placeholders whose password nobody keeps):
every file but its vault, and a new vault holding a new random value for each
``vault_*`` name the copied files use, encrypted under the new environment's name and
password file, so whoever copies an example can open and change all of it.
"""

from __future__ import annotations

import argparse
import datetime
import re
import secrets
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import jinja2
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from webtier import ROOT
from webtier.checks.preflight import PLACEHOLDER
from webtier.model import vault

SKELETON = ROOT / "files" / "new-env"
VAULT = Path("group_vars", "all", "vault.yml")


def ensure_password_file(password_file: Path) -> None:
    """Make the vault's password file (random, mode 0600) when it does not exist."""
    if not password_file.exists():
        password_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        password_file.write_text(secrets.token_urlsafe(32) + "\n")
        password_file.chmod(0o600)


def create(target: Path, password_file: Path, local: bool = False, port: int = 8200) -> list[Path]:
    """Write the environment into ``target`` (which must not exist); return its files.
    ``local``: its hosts are containers of this machine (their names, the container
    network, the load balancer published on 127.0.0.1:``port``)."""
    if target.exists():
        raise FileExistsError(f"{target} exists: a new environment needs a new directory")
    env = target.name
    ensure_password_file(password_file)
    values = {
        "env": env,
        "password_file": password_file,
        "directory": target,
        "local": local,
        "port": int(port),
        # URL-safe: the app's REDIS_URL carries them (webtier.model.derive quotes them anyway)
        "redis_admin_password": secrets.token_urlsafe(24),
        "redis_app_password": secrets.token_urlsafe(24),
    }
    jinja = jinja2.Environment(
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    written = []
    for source in sorted(p for p in SKELETON.rglob("*") if p.is_file()):
        relative = source.relative_to(SKELETON)
        dest = target / (relative.with_suffix("") if source.suffix == ".j2" else relative)
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text()
        if source.suffix == ".j2":
            text = jinja.from_string(text).render(values)
        if dest == target / VAULT:  # encrypted before it reaches the disk
            text = vault.encrypt(text, env, password_file)
        dest.write_text(text)
        written.append(dest)
    return written


#: A vault variable named in an inventory file ("{{ vault_redis_app_password }}").
VAULT_NAME = re.compile(r"\bvault_[a-z0-9_]+\b")


def tls_material(target: Path, names: Sequence[str]) -> dict[str, str]:
    """PEM values for the TLS names of a copied inventory's vault (``*_tls_ca_cert``;
    ``*_tls_cert`` and ``*_tls_key`` named in ``host_vars/<host>/``): a CA of the new
    environment's own (P-256, ten years) and, for each host, a key and a certificate it
    signed, for the host's inventory name (CN and DNS name). With the cryptography
    library Ansible itself needs; a random string would not pass preflight. Replace them
    with your own PKI's at will."""
    hosts: dict[str, str] = {}
    for path in target.glob("host_vars/*/*.yml"):
        for name in VAULT_NAME.findall(path.read_text()):
            if name.endswith(("_tls_cert", "_tls_key")):
                hosts[name] = path.parent.name
    wanted = [n for n in names if n.endswith("_tls_ca_cert") or n in hosts]
    if not wanted:
        return {}
    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: str, key, issuer: str, issuer_key, ca: bool) -> str:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        cert = builder.sign(issuer_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def pem_key(key) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = f"{target.name} CA"
    found = {
        n: certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
        for n in wanted
        if n.endswith("_tls_ca_cert")
    }
    keys = {host: ec.generate_private_key(ec.SECP256R1()) for host in set(hosts.values())}
    for name in wanted:
        if name in hosts:
            key = keys[hosts[name]]
            found[name] = (
                pem_key(key)
                if name.endswith("_tls_key")
                else certificate(hosts[name], key, ca_name, ca_key, ca=False)
            )
    return found


def copy(source: Path, target: Path, password_file: Path) -> list[Path]:
    """``source``'s files into ``target`` (which must not exist) with a new vault: a new
    random value for each vault_* name the files use. Returns the files written."""
    if target.exists():
        raise FileExistsError(f"{target} exists: a new environment needs a new directory")
    if not (source / "hosts.yml").is_file():
        raise FileNotFoundError(f"{source}: no hosts.yml, not an inventory to copy")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("vault.yml"))
    names = sorted({n for p in target.rglob("*.yml") for n in VAULT_NAME.findall(p.read_text())})
    ensure_password_file(password_file)
    values = {name: secrets.token_urlsafe(24) for name in names}
    values |= tls_material(target, names)
    plain = f"---\n# Made by webtier-new-env --from {source}: new random values, change any.\n"
    plain += yaml.safe_dump(values, sort_keys=True, width=1000)
    (target / VAULT).parent.mkdir(parents=True, exist_ok=True)
    (target / VAULT).write_text(vault.encrypt(plain, target.name, password_file))
    return sorted(p for p in target.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="webtier-new-env", description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, help="the new inventory, e.g. inventory/staging2")
    parser.add_argument(
        "--vault-password-file",
        type=Path,
        help="the vault's password file (default ~/.vault/<name>; made when missing)",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="hosts are containers of this machine (playbooks/sandbox.yml makes, removes them)",
    )
    parser.add_argument(
        "--port", type=int, default=8200, help="with --local: the load balancer on 127.0.0.1:PORT"
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="copy this environment (e.g. inventory/production) with a new vault of its own",
    )
    args = parser.parse_args(argv)
    name = args.directory.name
    password_file = args.vault_password_file or Path.home() / ".vault" / name
    try:
        if args.source:
            files = copy(args.source, args.directory, password_file.expanduser())
        else:
            files = create(args.directory, password_file.expanduser(), args.local, args.port)
    except (FileExistsError, FileNotFoundError) as error:
        print(f"webtier-new-env: {error}", file=sys.stderr)
        return 2
    print(f"{args.directory}: {len(files)} files, vault encrypted with vault id {name}")
    print(f"  vault password file: {password_file} (keep it out of the repository)")
    print(f"  fill in every {PLACEHOLDER}, then check with:")
    print(f"    webtier-preflight {args.directory}")
    vault_id = f"--vault-id {name}@{password_file}"
    if args.local:
        # playbooks/sandbox.yml: in the repository (the collection artifact leaves it out)
        sandbox = f"ansible-playbook -i {args.directory} playbooks/sandbox.yml {vault_id}"
        print("  make its containers with:")
        print(f"    {sandbox}")
    print("  and converge it with:")
    print(f"    ansible-playbook -i {args.directory} webtier.stack.site {vault_id}")
    if args.local:
        print(f"  then: curl http://127.0.0.1:{args.port}/")
        print("  and remove every container and the network of the environment with:")
        print(f"    {sandbox} -e sandbox_state=absent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
