"""The whole stack converged by pyinfra, from the same inventory and the same templates
as site.yml (see README.md, "pyinfra"):

    WEBTIER_INVENTORY=inventory/sandbox \
        pyinfra -y pyinfra_deploy/inventory.py pyinfra_deploy/deploy.py

Each host runs the roles site.yml gives it (webtier.model.topology.roles_of), in site.yml's
order (webtier.model.topology.HOST_ROLES, which a unit test holds site.yml's plays to): one
module a role under pyinfra_roles/, each a ``deploy`` function over the role's files,
the host's facts and the app the app servers run. Which files each role writes and
with what content comes from webtier.files.configs.host_files(), the same function the
render command uses and the parity test holds against Ansible's template module (the
role_files action), with this host's facts read here. Every
file that has a checker is written to a candidate path, checked, and only then put
live: a failed check stops the host with the live file and the running service as
they were. Services are reloaded or restarted only when a file they read changed, so
a second run changes nothing.

Not done here (Ansible only): Redis settings applied at run time with CONFIG SET
(pyinfra restarts Redis instead; a new ACL file alone goes live with ACL LOAD, as in
the role), Sentinel over TLS, check mode, releases
(playbooks/deploy.yml, which never leaves a location without a serving server, and its
python_app_switch_only rollback).
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import sys

from pyinfra import host, logger
from pyinfra.api.exceptions import DeployError

from webtier import ROOT
from webtier.checks import live
from webtier.files import configs, pgbackrest
from webtier.files import firewall as firewall_plan
from webtier.files import postgresql as pg_files
from webtier.files.facts import Facts
from webtier.files.kernel import HOST_KIND_PROBE, MEMORY_PROBE, kernel_host
from webtier.model import derive, vault
from webtier.model.inventory import load, sealed
from webtier.model.topology import roles_of

# The role modules beside this file, wherever the collection is installed.
sys.path.insert(0, str(ROOT / "pyinfra_deploy"))
from pyinfra_roles import postgresql, redis
from pyinfra_roles.common import Host, fact, host_facts, this

_name = host.data.webtier_host
_inventory = load(*(ROOT / p for p in host.data.webtier_inventory.split(os.pathsep)))
_roles = roles_of(_name, _inventory.members)
this.begin(Host(_name, _inventory, _roles, dict(configs.variables(_inventory, _name, _roles))))
if _inventory.sealed_files:  # its variables would be missing, not only the vault_* ones
    raise DeployError(
        f"{', '.join(str(p) for p in _inventory.sealed_files)}: a vault file and no password "
        f"to open it; give its password file: webtier-pyinfra INVENTORY --vault-password-file "
        f"FILE (or {vault.PASSWORD_FILE}=FILE)"
    )
if locked := sealed(this.v):  # a secret from a vault nobody opened: its placeholder
    raise DeployError(
        f"{this.name}: {', '.join(locked)} come from a vault; give its password file: "
        f"webtier-pyinfra INVENTORY --vault-password-file FILE (or {vault.PASSWORD_FILE}=FILE)"
    )


def read_facts() -> Facts:
    """What the roles read from the host before they template, read the same way."""
    kernel = kernel_host(
        this.v["kernel_tuning_host_kind"],
        fact(HOST_KIND_PROBE),
        this.v["kernel_tuning_nofile"],
        this.v["kernel_tuning_nr_open"],
    )
    # As the uwsgi role asks `uwsgi --help`; before uWSGI is installed: Debian's builds
    # (2.0.21 in 12, 2.0.28 in 13) have no --max-requests-delta.
    uwsgi_help = fact("uwsgi --help 2>/dev/null | grep -c -- --max-requests-delta || true")
    route = fact("ip -4 -o route get 192.0.2.1 2>/dev/null || true")
    source = re.search(r"\bsrc (\S+)", route)
    running = (
        fact(f"readlink {shlex.quote(this.v['python_app_root'] + '/current')} || true")
        if "python_app" in this.roles
        else ""
    )
    # As the firewall role resolves them: on the host, at converge time.
    # The load balancers too on a Gunicorn host (forwarded_allow_ips auto).
    names = []
    if "firewall" in this.roles:
        names += firewall_plan.sources(
            this.name, this.inventory.members, this.inventory.all_host_vars()
        )
    if "gunicorn" in this.roles:
        names += this.inventory.members.get(firewall_plan.LOAD_BALANCERS, [])
    # As the postgresql roles resolve them (pg_hba.conf takes addresses).
    if "postgresql" in this.roles:
        names += pg_files.failover_names(this.name, this.v, this.inventory.members)
    if "postgresql_monitor" in this.roles:
        names += [
            h
            for h in this.inventory.members.get(this.v["postgresql_monitor_databases_group"], [])
            if h != this.name
        ]
    resolved = {
        name: firewall_plan.addresses(name, fact(f"getent ahostsv4 {shlex.quote(name)} || true"))
        for name in dict.fromkeys(names)
    } or None
    return Facts(
        resolved=resolved,
        cpus=int(fact("nproc")),
        pid1_nofile_hard=kernel["pid1_nofile_hard"],
        nofile_hard=kernel["nofile_effective"],
        in_container=kernel["in_container"],
        # its RAM, or its cgroup's memory limit when lower (as kernel_tuning publishes it)
        memtotal_mb=derive.granted_memory_mb(*fact(MEMORY_PROBE).split()[:2]),
        ipv4=source[1] if source else None,
        uwsgi_max_requests_delta=uwsgi_help not in ("", "0"),
        running_release=running.rsplit("/", 1)[-1] or None,
        release=fact(". /etc/os-release; echo $VERSION_CODENAME"),
        redis_sentinel_says=redis.sentinel_says(),
        postgresql_verifiers=postgresql.verifiers(),
    )


def main() -> None:
    facts = read_facts()
    this.v.update(configs.variables(this.inventory, this.name, this.roles, facts))
    # The roles' checks against this host (validate.yml under Ansible), before any
    # operation is queued; the inventory-wide ones ran in inventory.py (preflight).
    checked = host_facts(facts)
    for note in live.notes(this.name, this.roles, this.v, checked):
        logger.warning(note)
    findings = live.check(this.name, this.roles, this.v, checked)
    if findings:
        raise DeployError(live.report(findings))
    rendered = configs.host_files(this.inventory, this.name, facts)
    app = None  # what python_app deployed, for the app servers after it
    for role in this.roles:
        mine = [f for f in rendered if f.role == role]
        module = importlib.import_module(f"pyinfra_roles.{role}")
        repository = role == "pgbackrest" and this.name in this.inventory.members.get(
            pgbackrest.REPOSITORIES, []
        )
        if role == "postgresql_monitor":
            # pyinfra runs the operations of different hosts in the order of the lines
            # they are called from: the monitor's from this line, before any database
            # host registers with it (site.yml's play order)
            app = module.deploy(mine, facts, app) or app
        elif not repository:
            app = module.deploy(mine, facts, app) or app
        else:
            # a repository's from this line, after every database host's: its stanzas
            # are created against running servers that archive to it (site.yml's order)
            app = module.deploy(mine, facts, app) or app


main()
