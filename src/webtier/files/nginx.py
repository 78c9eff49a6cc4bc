"""What the load balancer's templates need from the inventory, computed once for both engines.

Each app host says which server serves its app (``webtier_app_server: gunicorn`` or
``uwsgi``); its port and protocol follow from that server role's own variables
(``gunicorn_bind``, ``uwsgi_bind``, ``uwsgi_protocol``) or, when the inventory leaves
them out, from the role's defaults file. Nothing about an app host is restated on the
load balancer, so the two cannot disagree.

``upstreams()`` turns ``nginx_upstreams`` (each naming an inventory group, optionally
only its hosts of one ``protocol``, or explicit servers) into upstream blocks;
``sites()`` resolves each location of ``nginx_sites`` to the upstreams it passes to.
A location may name two upstreams of different protocols (Gunicorn over HTTP and
uWSGI over the uwsgi protocol, say during a migration from one to the other):
requests are split between them by server weight, and a request whose upstream fails
before answering goes to the other one.
Every problem raises ``ValueError`` with a message that names the variable.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from webtier.model import derive
from webtier.model.inventory import role_defaults

#: The balancing methods the model allows.
from webtier.model.schema import Nginx

METHODS = typing.get_args(Nginx.Upstream.model_fields["method"].annotation)
SERVER_KINDS = ("gunicorn", "uwsgi")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: An upstream's settings when the inventory leaves them out: the model's defaults.
UPSTREAM_DEFAULTS = {
    name: Nginx.Upstream.model_fields[name].default
    for name in (
        "method",
        "hash_key",
        "keepalive",
        "keepalive_requests",
        "keepalive_timeout",
        "max_fails",
        "fail_timeout",
        "max_conns",
    )
}


def _port(bind: str, where: str) -> int:
    if bind.startswith("unix:") or ":" not in bind:
        raise ValueError(f"{where}={bind!r} is not a TCP host:port the load balancer can reach")
    return int(bind.rsplit(":", 1)[1])


def standin_port(hostvars: Mapping[str, Any], port: int) -> int:
    """Where a stand-in of a Gunicorn host's running release listens during a release in
    place (playbooks/deploy.yml): ``webtier_app_standin_port``, else the server's port + 1."""
    return int(hostvars.get("webtier_app_standin_port") or port + 1)


def app_server(host: str, hostvars: Mapping[str, Any]) -> dict[str, Any]:
    """Kind, protocol and address of the app server on ``host``, from its own variables."""
    kind = hostvars.get("webtier_app_server")
    if kind not in SERVER_KINDS:
        raise ValueError(
            f"{host}: webtier_app_server={kind!r}; an app host behind the load balancer "
            f"must say which server serves its app: {' or '.join(SERVER_KINDS)}"
        )

    def var(name: str) -> Any:
        return hostvars[name] if name in hostvars else role_defaults(kind)[name]

    if kind == "gunicorn":
        binds = var("gunicorn_bind")
        binds = [binds] if isinstance(binds, str) else list(binds)
        tcp = [b for b in binds if not b.startswith("unix:")]
        if not tcp:
            raise ValueError(f"{host}: gunicorn_bind={binds} has no TCP address to balance to")
        port, protocol = _port(tcp[0], f"{host}: gunicorn_bind"), "http"
    else:
        port = _port(var("uwsgi_bind"), f"{host}: uwsgi_bind")
        protocol = "uwsgi" if var("uwsgi_protocol") == "uwsgi" else "http"
    address = hostvars.get("webtier_app_address", host)
    standin = standin_port(hostvars, port)
    return {
        "host": host,
        "kind": kind,
        "protocol": protocol,
        "address": f"{address}:{port}",
        # Where a stand-in of the running release serves while a Gunicorn host that
        # cannot be drained restarts for a new one (playbooks/deploy.yml).
        "standin_address": f"{address}:{standin}" if kind == "gunicorn" else None,
        "health_path": hostvars.get(
            "python_app_health_path", role_defaults("python_app")["python_app_health_path"]
        ),
    }


def _server(entry: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "address": entry["address"],
        "weight": int(entry.get("weight", 1)),
        "backup": bool(entry.get("backup", False)),
        "max_fails": int(entry.get("max_fails", spec["max_fails"])),
        "fail_timeout": str(entry.get("fail_timeout", spec["fail_timeout"])),
        "max_conns": int(entry.get("max_conns", spec["max_conns"])),
    }


def upstreams(
    specs: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """``nginx_upstreams`` resolved against the inventory into upstream blocks."""
    result, seen = [], set()
    for index, raw in enumerate(specs):
        where = f"nginx_upstreams[{index}]"
        name = raw.get("name", "")
        if not NAME.match(str(name)):
            raise ValueError(f"{where}.name={name!r}: use lower case letters, digits and _")
        where = f"{where} ({name})"
        if name in seen:
            raise ValueError(f"{where}: the name is used twice")
        seen.add(name)
        unknown = set(raw) - {"name", "group", "servers", "protocol", *UPSTREAM_DEFAULTS}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        spec = {**UPSTREAM_DEFAULTS, **raw}
        if spec["method"] not in METHODS:
            raise ValueError(f"{where}.method={spec['method']!r}: use one of {', '.join(METHODS)}")

        servers, protocols = [], {}
        if "group" in raw:
            hosts = groups.get(raw["group"], [])
            for host in hosts:
                app = app_server(host, hostvars[host])
                if raw.get("protocol", app["protocol"]) != app["protocol"]:
                    continue  # the group's hosts that speak another protocol
                protocols[host] = app["protocol"]
                servers.append(
                    _server(
                        {
                            "address": app["address"],
                            "weight": hostvars[host].get("webtier_app_weight", 1),
                            "backup": hostvars[host].get("webtier_app_backup", False),
                        },
                        spec,
                    )
                )
        for entry in raw.get("servers", []):
            protocols[entry["address"]] = raw.get("protocol", "http")
            servers.append(_server(entry, spec))
        if not [s for s in servers if not s["backup"]]:
            source = f"group {raw['group']!r}" if "group" in raw else "servers"
            raise ValueError(
                f"{where}: no servers to balance to ({source} gives none that is not a "
                "backup); name an inventory group with app hosts, or list servers"
            )
        if len(set(protocols.values())) > 1:
            mixed = ", ".join(f"{k} ({v})" for k, v in protocols.items())
            raise ValueError(
                f"{where}: one upstream cannot mix protocols: {mixed}. Make one upstream "
                "per protocol; a location of nginx_sites may name both."
            )
        if spec["method"] in ("ip_hash", "hash") and any(s["backup"] for s in servers):
            raise ValueError(f"{where}: nginx allows no backup server with {spec['method']}")
        protocol = next(iter(protocols.values()))
        result.append(
            {
                "name": name,
                "protocol": protocol,
                "method": spec["method"],
                "hash_key": spec["hash_key"],
                # uWSGI closes the connection after each request: no pool to keep.
                "keepalive": int(spec["keepalive"]) if protocol == "http" else 0,
                "keepalive_requests": int(spec["keepalive_requests"]),
                "keepalive_timeout": str(spec["keepalive_timeout"]),
                "servers": servers,
            }
        )
    return result


def _listen(
    site: Mapping[str, Any], where: str, seen: set[int], defaults: set[int], options: str
) -> list[dict[str, Any]]:
    """The site's listen sockets. Socket options (backlog, reuseport) may appear once per
    port in all of nginx: they go on the first site that listens on the port. ``seen``
    and ``defaults`` are the ports earlier sites listen on and have a default server on."""
    ports = [] if site.get("port", 80) is None else [(int(site.get("port", 80)), False)]
    if "tls" in site:
        for key in ("certificate", "certificate_key"):
            if not site["tls"].get(key):
                raise ValueError(f"{where}.tls.{key} is required (a path on the host)")
        ports.append((int(site["tls"].get("port", 443)), True))
    if not ports:
        raise ValueError(f"{where}: listens nowhere (port is null and no tls)")
    listen = []
    for port, ssl in ports:
        extra = ""
        if site.get("default_server"):
            if port in defaults:
                raise ValueError(f"{where}.default_server: port {port} has one already")
            defaults.add(port)
            extra = " default_server"
        if port not in seen:
            seen.add(port)
            extra += options
        listen.append({"port": port, "ssl": ssl, "options": extra})
    return listen


def sites(
    specs: Sequence[Mapping[str, Any]],
    resolved: Sequence[Mapping[str, Any]],
    backlog: int = 511,
    reuseport: bool = False,
    zones: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """``nginx_sites`` with each location's upstream names resolved to what it passes to.

    A proxied location gets ``pass``: a list of one or two ``{name, protocol, share}``,
    share being the percentage of requests it starts with (by non-backup server weight).
    Each site gets ``listen``: ``{port, ssl, options}`` per socket. ``zones`` maps
    limit_req and limit_conn to the zone names defined for them.
    """
    zones = zones or {}

    def check_limits(block: Mapping[str, Any], here: str) -> None:
        for kind, variable in (("limit_req", "req"), ("limit_conn", "conn")):
            if kind in block and block[kind].get("zone") not in zones.get(kind, ()):
                raise ValueError(
                    f"{here}.{kind}.zone={block[kind].get('zone')!r} is not defined in "
                    f"nginx_limit_{variable}_zones (defined: {list(zones.get(kind, ())) or 'none'})"
                )

    by_name = {u["name"]: u for u in resolved}
    options = f" backlog={int(backlog)}" + (" reuseport" if reuseport else "")
    seen: set[int] = set()
    defaults: set[int] = set()
    result, seen = [], set()
    for index, raw in enumerate(specs):
        name = raw.get("name", "")
        where = f"nginx_sites[{index}]"
        if not NAME.match(str(name)):
            raise ValueError(f"{where}.name={name!r}: use lower case letters, digits and _")
        if name in seen:
            raise ValueError(f"{where} ({name}): the name is used twice")
        seen.add(name)
        check_limits(raw, where)
        site = {**raw, "locations": [], "listen": _listen(raw, where, seen, defaults, options)}
        site["server_name"] = (
            [raw["server_name"]]
            if isinstance(raw.get("server_name"), str)
            else list(raw.get("server_name", ["_"]))
        )
        for number, location in enumerate(raw.get("locations", [])):
            here = f"{where}.locations[{number}]"
            check_limits(location, here)
            if not str(location.get("path", "")).strip():
                raise ValueError(f"{here}.path is required (for example / or = /healthz)")
            names = location.get("upstream", [])
            names = [names] if isinstance(names, str) else list(names)
            missing = [n for n in names if n not in by_name]
            if missing:
                raise ValueError(
                    f"{here}.upstream: {missing} not in nginx_upstreams "
                    f"(defined: {sorted(by_name) or 'none'})"
                )
            targets = [by_name[n] for n in names]
            if len(targets) > 2 or len({t["protocol"] for t in targets}) < len(targets):
                raise ValueError(
                    f"{here}.upstream={names}: name one upstream, or two of different "
                    "protocols (http and uwsgi); same-protocol servers belong in one upstream"
                )
            weights = [sum(s["weight"] for s in t["servers"] if not s["backup"]) for t in targets]
            passes = [
                {
                    "name": t["name"],
                    "protocol": t["protocol"],
                    "share": round(100 * w / sum(weights), 2),
                }
                for t, w in zip(targets, weights, strict=True)
            ]
            site["locations"].append({**location, "id": f"{name}_{number}", "pass": passes})
        result.append(site)
    return result


#: Debian releases whose nginx (1.22 in bookworm) takes HTTP/2 as a flag of ``listen``;
#: from nginx 1.25.1 (trixie's 1.26) it is the ``http2`` directive, and the flag is
#: deprecated (nginx -t warns).
HTTP2_LISTEN_FLAG = frozenset({"bullseye", "bookworm"})


def plan(
    settings: Mapping[str, Any],
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
    release: str = "trixie",
) -> dict[str, Any]:
    """Everything the nginx templates need beyond the role's own variables. ``release``:
    the host's Debian codename (how its nginx spells HTTP/2)."""
    resolved = upstreams(settings.get("nginx_upstreams", []), groups, hostvars)
    return {
        "nginx_http2_listen_flag": release in HTTP2_LISTEN_FLAG,
        "nginx_upstreams_resolved": resolved,
        "nginx_sites_resolved": sites(
            settings.get("nginx_sites", []),
            resolved,
            backlog=settings["nginx_listen_backlog"],
            reuseport=settings["nginx_reuseport"],
            zones={
                "limit_req": [z["name"] for z in settings.get("nginx_limit_req_zones", [])],
                "limit_conn": [z["name"] for z in settings.get("nginx_limit_conn_zones", [])],
            },
        ),
        "nginx_worker_rlimit_nofile_effective": derive.nginx_rlimit_nofile(
            settings["nginx_worker_rlimit_nofile"], settings["nginx_worker_connections"]
        ),
    }


#: A server line of an upstream block the nginx role writes, and whether it is marked
#: down (playbooks/deploy.yml marks a host down while it is released).
_SERVER_LINE = re.compile(r"(?m)^\s*server\s+(\S+)\s[^;]*?(\sdown)?;\s*$")


def marked_down(http_conf: str) -> list[str]:
    """The upstream servers a load balancer's http.conf marks ``down``."""
    return [m[1] for m in _SERVER_LINE.finditer(http_conf) if m[2]]


def lb_settings(lb: str, hostvars: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A load balancer's nginx variables: its inventory over the role's defaults."""
    return {**role_defaults("nginx"), **hostvars[lb]}


def _holding(address: str, plan_: Mapping[str, Any]):
    """(site, location, upstreams) of each proxied location whose servers (of every
    upstream it passes to: a split location counts its fallback) include ``address``."""
    by_name = {u["name"]: u for u in plan_["nginx_upstreams_resolved"]}
    for site in plan_["nginx_sites_resolved"]:
        for location in site["locations"]:
            passes = [by_name[p["name"]] for p in location["pass"]]
            if any(s["address"] == address for u in passes for s in u["servers"]):
                yield site, location, passes


def peer_probes(
    host: str, lb: str, groups: Mapping[str, Sequence[str]], hostvars: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """How ``lb`` tells whether the other servers of ``host``'s locations serve:
    ``{address, protocol, path}`` each, ``path`` being the health path of the app host
    behind the address (``python_app_health_path``), None for a listed server (then a
    connection is the test)."""
    mine = app_server(host, hostvars[host])["address"]
    owners = {
        app["address"]: app
        for h in groups.get("appservers", ())
        if hostvars[h].get("webtier_app_server") in SERVER_KINDS
        for app in [app_server(h, hostvars[h])]
    }
    found: dict[str, dict[str, Any]] = {}
    for _, _, passes in _holding(mine, plan(lb_settings(lb, hostvars), groups, hostvars)):
        for upstream in passes:
            for server in upstream["servers"]:
                address, owner = server["address"], owners.get(server["address"])
                if address != mine and address not in found:
                    found[address] = {
                        "address": address,
                        "protocol": upstream["protocol"],
                        "path": owner["health_path"] if owner else None,
                    }
    return list(found.values())


def drain_blockers(
    host: str,
    lb: str,
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Any],
    unavailable: Sequence[str] = (),
) -> list[str]:
    """The locations of ``lb`` that would be left with no serving server if ``host``'s
    app server stopped serving, the servers in ``unavailable`` (marked down, failing
    their probe) not counting: ``"lb1: site S, location P (upstream U)"`` each."""
    mine = app_server(host, hostvars[host])["address"]
    blocked = []
    for site, location, passes in _holding(mine, plan(lb_settings(lb, hostvars), groups, hostvars)):
        serving = [
            s
            for u in passes
            for s in u["servers"]
            if s["address"] != mine and s["address"] not in unavailable
        ]
        if not serving:
            names = ", ".join(u["name"] for u in passes)
            blocked.append(
                f"{lb}: site {site['name']}, location {location['path']} (upstream {names})"
            )
    return blocked
