"""uwsgi as the role does it: the WSGI file and the ini checked as the unit runs them, a
restart for new settings, a chain reload for new code."""

from __future__ import annotations

from pyinfra.operations import files
from pyinfra_roles.common import app_run, helper, packages, put, serve, this

from webtier.files import configs
from webtier.files.facts import Facts


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    wsgi, ini, unit = mine
    packages("Install uWSGI", ["uwsgi-core", "uwsgi-plugin-python3"])
    helper("uwsgi")
    load_app = f'{app["venv"]}/bin/python -c "import runpy, sys; runpy.run_path(sys.argv[1])" {{}}'
    wsgi_op = put(wsgi, app_run(app, unit, load_app))
    files.directory(name="uWSGI configuration directory", path="/etc/uwsgi/webtier", mode="0755")
    ini_op = put(ini, app_run(app, unit, "/usr/local/sbin/webtier-uwsgi-check {}"))
    unit_op = put(unit)
    serve(
        this.v["__uwsgi_unit"],
        # The ini is read at start; new code alone is a chain reload.
        restart=lambda: ini_op.did_change() or unit_op.did_change() or app["env_changed"](),
        reload=lambda: app["code_changed"]() or wsgi_op.did_change(),
        unit_changed=unit_op.did_change,
    )
