"""pgbackrest as the role does it: on a database host with a repository, pgBackRest's
TLS server and configuration (checked by pgBackRest's own parser first); on the
repository host the same, then each stanza created once with a first full backup in
the background, pgBackRest's check of its archiving, and the backup timers."""

from __future__ import annotations

import shlex

from pyinfra.operations import files, server
from pyinfra_roles.common import fact, helper, packages, put, serve, this

from webtier.files import configs, pgbackrest
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    derived = pgbackrest.pgbackrest_derived(
        this.name, this.v, facts.release, this.inventory.members, this.inventory.all_host_vars()
    )
    side = derived["__pgbackrest_side"]
    if side is None:  # a database host without a repository: nothing to do
        return app
    by_dest = {f.dest: f for f in mine}
    packages("Install pgBackRest", ["pgbackrest"])
    helper("pgbackrest")
    tls_dir = this.v["__pgbackrest_tls_dir"]
    for path in ("/etc/pgbackrest", tls_dir):
        files.directory(
            name=f"The directory {path}", path=path, user="root", group="postgres", mode="0750"
        )
    tls = [put(by_dest[f"{tls_dir}/{name}"]) for name in ("ca.crt", "server.crt", "server.key")]
    conf = put(by_dest["/etc/pgbackrest/pgbackrest.conf"], "webtier-pgbackrest-check %s")
    units = [put(f) for f in mine if f.dest.startswith("/etc/systemd/system/")]
    serve(
        "pgbackrest",
        restart=lambda: any(o.did_change() for o in units),
        reload=lambda: any(o.did_change() for o in [*tls, conf]),
        unit_changed=lambda: any(o.did_change() for o in units),
    )
    if side == "repository":
        _stanzas(derived["__pgbackrest_stanzas"], conf)
    return app


def _stanzas(stanzas: list[dict], conf) -> None:
    """tasks/repository.yml: each stanza created once (a first full backup started in
    the background), pgBackRest's check of its archiving when it is new or the
    configuration changed, its backup timers enabled."""
    path = this.v["pgbackrest_repository_path"]
    for stanza in stanzas:
        name = shlex.quote(stanza["name"])
        info = f"{path}/backup/{stanza['name']}/backup.info"
        missing = fact(f"test -e {shlex.quote(info)} || echo missing") == "missing"
        server.shell(
            name=f"Create stanza {stanza['name']}",
            commands=[f"runuser -u postgres -- pgbackrest --stanza={name} stanza-create"],
            _if=lambda missing=missing: missing,
        )
        server.shell(
            name=f"Check that stanza {stanza['name']} archives (pgbackrest check)",
            commands=[f"runuser -u postgres -- pgbackrest --stanza={name} check"],
            _if=lambda missing=missing: missing or conf.did_change(),
        )
        server.shell(
            name=f"Take a first full backup of stanza {stanza['name']} (in the background)",
            commands=[f"systemctl start --no-block pgbackrest-full@{name}.service"],
            _if=lambda missing=missing: missing,
        )
        for kind in ("full", "diff"):
            # An instance of a template unit: pyinfra's enabled fact lists unit files,
            # which name the template only, so systemctl itself is asked.
            timer = shlex.quote(f"pgbackrest-{kind}@{stanza['name']}.timer")
            state = fact(f"systemctl is-enabled {timer}; systemctl is-active {timer}; true")
            server.shell(
                name=f"Schedule stanza {stanza['name']}'s {kind} backups",
                commands=[f"systemctl enable --now {timer}"],
                _if=lambda state=state: state.split() != ["enabled", "active"],
            )
