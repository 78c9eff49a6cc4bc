"""gunicorn as the role does it: its configuration checked with gunicorn --check-config as
the unit runs it, a restart for a new release or unit, a reload (HUP) for new settings."""

from __future__ import annotations

from pyinfra.operations import files
from pyinfra_roles.common import app_run, put, serve, this

from webtier.files import configs
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    conf, unit = mine
    files.directory(name="Gunicorn configuration directory", path="/etc/gunicorn", mode="0755")
    check = f"{app['venv']}/bin/gunicorn --check-config --config {{}}"
    conf_op = put(conf, app_run(app, unit, check))
    unit_op = put(unit)
    serve(
        this.v["__gunicorn_unit"],
        restart=lambda: unit_op.did_change() or app["code_changed"](),
        reload=lambda: conf_op.did_change() or app["env_changed"](),
        unit_changed=unit_op.did_change,
    )
