"""nginx as the role does it: the whole tree rendered into a candidate, checked with
nginx -t in the unit's sandbox, then put live; a reload for new settings, a restart for
the descriptor limit."""

from __future__ import annotations

import hashlib
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import Sha1File
from pyinfra.operations import files, server, systemd
from pyinfra_roles.common import CHECK_IN_UNIT, candidate, helper, packages, put, this

from webtier.files import configs
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    self_signed = [s for s in this.v["nginx_sites"] if (s.get("tls") or {}).get("self_signed")]
    packages("Install nginx", ["nginx", "logrotate"] + (["openssl"] if self_signed else []))
    for site in self_signed:
        tls = site["tls"]
        files.directory(
            name=f"Directory of {tls['certificate']}", path=tls["certificate"].rsplit("/", 1)[0]
        )
        server.shell(
            name=f"Self-signed certificate of {site['name']}",
            commands=[
                "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
                f" -days 825 -subj /CN={this.name}"
                f" -keyout {tls['certificate_key']} -out {tls['certificate']}"
            ],
            _if=lambda path=tls["certificate"]: host.get_fact(Sha1File, path=path) is None,
        )
    tree = [f for f in mine if f.dest.startswith("/etc/nginx/")]
    (dropin,) = [f for f in mine if f not in tree]
    stage = "/var/lib/webtier/nginx-candidate"
    for file in tree:
        files.put(
            name=f"Candidate {file.dest}",
            src=StringIO(file.content),
            dest=stage + file.dest.removeprefix("/etc/nginx"),
            create_remote_dir=True,
            mode=file.mode,
        )
    helper("nginx")
    live_differs = any(
        host.get_fact(Sha1File, path=f.dest) != hashlib.sha1(f.content.encode()).hexdigest()
        for f in [*tree, dropin]
    )
    if live_differs:
        # In the unit's sandbox, with the candidate drop-in (files/webtier-unit-run),
        # where the nginx role puts it too.
        dropin_candidate = candidate(dropin, f"{stage}/systemd/{dropin.dest.rsplit('/', 1)[1]}")
        server.shell(
            name="Check the whole candidate tree with nginx -t",
            commands=[
                f"{CHECK_IN_UNIT} nginx --dropin {dropin_candidate} -- "
                f"nginx -t -q -c {stage}/nginx.conf"
            ],
        )
    live = [put(f) for f in tree]
    dropin_op = put(dropin)
    systemd.daemon_reload(name="Reload systemd units", _if=dropin_op.did_change)
    started = systemd.service(
        name="Keep nginx enabled and running", service="nginx", running=True, enabled=True
    )
    server.shell(
        name="Restart nginx for its descriptor limit",
        commands=[f"{CHECK_IN_UNIT} nginx -- nginx -t -q", "systemctl restart nginx"],
        _if=lambda: not started.did_change() and dropin_op.did_change(),
    )
    server.shell(
        name="Reload nginx",
        commands=[f"{CHECK_IN_UNIT} nginx -- nginx -t -q", "systemctl reload nginx"],
        _if=lambda: (
            not started.did_change()
            and not dropin_op.did_change()
            and any(o.did_change() for o in live)
        ),
    )
