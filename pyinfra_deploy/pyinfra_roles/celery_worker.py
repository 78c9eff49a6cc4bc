"""celery_worker as the role runs it: the launcher checked by importing it as the units
run, one unit per queue, a restart (a warm shutdown) for new code."""

from __future__ import annotations

import re

from pyinfra.operations import files, server, systemd
from pyinfra_roles.common import app_run, fact, put, this

from webtier.files import configs
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    """The role's launcher (checked by importing it as a unit runs it), one unit per
    queue, the units of queues no longer listed stopped and removed, and a restart (a
    warm shutdown drains the worker) for a new release, environment, launcher or unit."""
    launcher = next(f for f in mine if f.dest.endswith("/webtier_celery.py"))
    units = [f for f in mine if f is not launcher]
    load = f'{app["venv"]}/bin/python -c "import runpy, sys; runpy.run_path(sys.argv[1])" {{}}'
    launcher_op = put(launcher, app_run(app, units[0], load))
    unit_ops = [put(unit) for unit in units]
    prefix = this.v["__celery_worker_unit_prefix"]
    wanted = {unit.dest.rsplit("/", 1)[1] for unit in units}
    listed = fact(f"ls /etc/systemd/system | grep -E '^{re.escape(prefix)}-.*[.]service$' || true")
    stale = sorted(set(listed.split()) - wanted)
    for name in stale:
        systemd.service(name=f"Stop {name}", service=name, running=False, enabled=False)
        files.file(name=f"Remove {name}", path=f"/etc/systemd/system/{name}", present=False)
    systemd.daemon_reload(
        name="Reload systemd units",
        _if=lambda: bool(stale) or any(o.did_change() for o in unit_ops),
    )
    for unit, unit_op in zip(units, unit_ops, strict=True):
        name = unit.dest.rsplit("/", 1)[1]
        started = systemd.service(
            name=f"Keep {name} enabled and running", service=name, running=True, enabled=True
        )
        server.shell(
            name=f"Restart {name}",
            commands=[f"systemctl restart {name}"],
            _if=lambda started=started, unit_op=unit_op: (
                not started.did_change()
                and (
                    unit_op.did_change()
                    or launcher_op.did_change()
                    or app["code_changed"]()
                    or app["env_changed"]()
                )
            ),
        )
