"""redis as the role does it: the local Sentinel's primary wins over the inventory's, the
seed is written once (Sentinel owns the file afterwards), and redis.conf is rewritten
only when its directives differ (Sentinel reformats it at a failover)."""

from __future__ import annotations

from pyinfra.api.exceptions import DeployError
from pyinfra.operations import server, systemd
from pyinfra_roles.common import (
    fact,
    hand_over,
    helper,
    packages,
    put,
    python,
    python_fact,
    same_directives,
    this,
)

from webtier.files import configs
from webtier.files.facts import Facts


def sentinel_client() -> str:
    """Python that connects ``client`` to the local Sentinel (its password read from its
    own file) and names the watched set ``name``."""
    paths = this.v["__redis_engines"][this.v["redis_engine"]]
    return f"""
with open({paths["sentinel_conf"]!r}) as stream:
    password = parse(stream.read()).get("requirepass", [[None]])[0][0]
client = redis.Redis(host="127.0.0.1", port={int(this.v["redis_sentinel_port"])},
                     password=password, socket_timeout=2, decode_responses=True)
name = {this.v["redis_sentinel_master_name"]!r}
"""


def sentinel_says() -> tuple[str, ...]:
    """('host', 'port') of the primary the local Sentinel names, () if it does not run."""
    if "redis" not in this.roles or not this.v["redis_sentinel"]:
        return ()
    answer = python_fact(
        sentinel_client()
        + 'print(*client.execute_command("SENTINEL", "get-master-addr-by-name", name))'
    ).split()
    return tuple(answer) if len(answer) == 2 else ()


def sentinel(mine: list[configs.File], paths: dict, dropin_ops: list) -> None:
    """Sentinel keeps its state in its file and rewrites it: the seed is written only
    while the file is not yet ours (the package's sample), as the role does."""
    seed = next(f for f in mine if f.dest == paths["sentinel_conf"])
    ours = fact(f"grep -c 'Managed by webtier' {seed.dest} 2>/dev/null || true")
    check = f"/usr/local/sbin/webtier-redis-check {paths['sentinel_server']} %s --sentinel"
    seeded = [] if ours not in ("", "0") else [put(seed, check)]
    started = systemd.service(
        name="Keep Sentinel enabled and running",
        service=paths["sentinel_service"],
        running=True,
        enabled=True,
    )
    server.shell(
        name="Restart Sentinel on its new seed or drop-in",
        commands=[f"systemctl restart {paths['sentinel_service']}"],
        _if=lambda: not started.did_change() and any(c.did_change() for c in seeded + dropin_ops),
    )
    if seeded:  # a new seed holds the inventory's values
        return
    # Settings changed after the seed are applied live, the way Sentinel expects (the
    # role's "Apply quorum and timeouts with SENTINEL SET").
    wanted = {
        "quorum": this.v["redis_sentinel_quorum"],
        "down-after-milliseconds": this.v["redis_sentinel_down_after_ms"],
        "failover-timeout": this.v["redis_sentinel_failover_timeout_ms"],
        "parallel-syncs": this.v["redis_sentinel_parallel_syncs"],
    }
    live = python_fact(
        sentinel_client() + 'answer = client.execute_command("SENTINEL", "MASTER", name)\n'
        "print(*answer if isinstance(answer, list) else "
        "[w for kv in answer.items() for w in kv])\n"
    ).split()
    current = dict(zip(live[::2], live[1::2], strict=False))
    for key, value in wanted.items():
        if current and current.get(key) != str(value):
            call = f'client.execute_command("SENTINEL", "SET", name, {key!r}, {str(value)!r})'
            server.shell(
                name=f"Set Sentinel's {key} to {value}",
                commands=[python(sentinel_client() + call)],
            )


def acl_load(paths: dict, acl_op, started, changed: list) -> None:
    """A new ACL file alone is applied live, as the role's redis_runtime_config does:
    ACL LOAD over the local socket as the admin, no restart (a new app user, or one
    app's new password, touches no other client). The admin's password reaches the
    host as a file only root reads (common.hand_over), which the command removes before
    it connects: never in an argv, an environment, an output or a file left behind."""
    if not this.v["redis_auth"]:
        return

    def wanted() -> bool:
        return (
            acl_op.did_change()
            and not started.did_change()
            and not any(c.did_change() for c in changed)
        )

    path = hand_over(
        "Hand the admin's password to ACL LOAD",
        this.v["redis_admin_password"],
        "redis-admin",
        wanted,
    )
    script = f"""
import os, redis
try:
    with open({path!r}) as stream:
        password = stream.read()
finally:
    os.unlink({path!r})
client = redis.Redis(unix_socket_path={paths["socket"]!r}, username={this.v["redis_admin_user"]!r},
                     password=password, socket_timeout=5)
client.execute_command("ACL", "LOAD")
"""
    server.shell(name="Load the new ACL file (ACL LOAD)", commands=[python(script)], _if=wanted)


def deploy(mine: list[configs.File], facts: Facts, app: dict | None) -> dict | None:
    if this.v["redis_sentinel"] and this.v["redis_tls"]:
        raise DeployError(
            f"{this.name}: Sentinel over TLS is converged by site.yml only "
            "(see pyinfra_deploy/deploy.py)"
        )
    paths = this.v["__redis_engines"][this.v["redis_engine"]]
    dropins = [f for f in mine if f.template.endswith("redis.service.d/webtier.conf.j2")]
    acl, conf = (next(f for f in mine if f.dest == paths[k]) for k in ("aclfile", "conf"))
    # The drop-in first: the package's postinst starts the service with it.
    dropin_ops = [put(f) for f in dropins]
    systemd.daemon_reload(
        name="Reload systemd units", _if=lambda: any(c.did_change() for c in dropin_ops)
    )
    sentinel_package = [paths["sentinel_package"]] if this.v["redis_sentinel"] else []
    packages("Install the server", paths["packages"] + sentinel_package)
    helper("redis")
    check = f"/usr/local/sbin/webtier-redis-check {paths['server']}"
    # TLS files (redis_tls) before the configuration: its check loads them.
    tls_ops = [put(f) for f in mine if "/tls/" in f.template]
    acl_op = put(acl, f"{check} {paths['conf']} --aclfile %s")
    changed = [*dropin_ops, *tls_ops]
    # Sentinel rewrites redis.conf at a failover in its own format: a file that says
    # what the template says stays as it is (the role's redis_config_file).
    if not same_directives(conf):
        changed.append(put(conf, f"{check} %s"))
    started = systemd.service(
        name="Keep the server enabled and running",
        service=paths["service"],
        running=True,
        enabled=True,
    )
    server.shell(
        name="Restart the server for its new configuration",
        commands=[f"systemctl restart {paths['service']}"],
        _if=lambda: not started.did_change() and any(c.did_change() for c in changed),
    )
    acl_load(paths, acl_op, started, changed)
    if this.v["redis_sentinel"]:
        ops = zip(dropins, dropin_ops, strict=True)
        sentinel(mine, paths, [op for f, op in ops if "sentinel" in f.dest])
