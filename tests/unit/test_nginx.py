"""The load balancer's plan (webtier.files.nginx) and the nginx templates it feeds."""

from __future__ import annotations

import pytest
import yaml

from webtier import ROOT
from webtier.files import nginx
from webtier.files.render import render

DEFAULTS = yaml.safe_load((ROOT / "roles/nginx/defaults/main.yml").read_text())
GROUPS = {"app_gunicorn": ["app1", "app3"], "app_uwsgi": ["app2"], "empty": []}
HOSTVARS = {
    "app1": {"webtier_app_server": "gunicorn"},
    "app2": {"webtier_app_server": "uwsgi", "uwsgi_bind": "0.0.0.0:9001", "webtier_app_weight": 3},
    "app3": {
        "webtier_app_server": "gunicorn",
        "gunicorn_bind": ["unix:/run/g.sock", "10.0.0.3:8100"],
    },
}
UPSTREAMS = [{"name": "web", "group": "app_gunicorn"}, {"name": "legacy", "group": "app_uwsgi"}]
SITES = [
    {
        "name": "demo",
        "default_server": True,
        "tls": {"certificate": "/c.pem", "certificate_key": "/k.pem", "redirect_http": True},
        "locations": [{"path": "/", "upstream": ["web", "legacy"]}],
    },
    {"name": "api", "locations": [{"path": "/", "upstream": "web"}]},
]


def plan(**overrides):
    settings = {**DEFAULTS, "nginx_upstreams": UPSTREAMS, "nginx_sites": SITES, **overrides}
    return nginx.plan(settings, GROUPS, HOSTVARS)


def rendered(**overrides):
    values = {**DEFAULTS, "nginx_upstreams": UPSTREAMS, "nginx_sites": SITES, **overrides}
    values.update(nginx.plan(values, GROUPS, HOSTVARS))
    sites = {
        s["name"]: render("etc/nginx/webtier/sites/site.conf.j2", {**values, "site": s})
        for s in values["nginx_sites_resolved"]
    }
    return (
        render("etc/nginx/nginx.conf.j2", values),
        render("etc/nginx/webtier/http.conf.j2", values),
        sites,
    )


def test_app_hosts_port_and_protocol_come_from_their_own_server_variables():
    web, legacy = plan()["nginx_upstreams_resolved"]
    # app1: gunicorn role default (0.0.0.0:8000); app3: its first TCP bind.
    assert [s["address"] for s in web["servers"]] == ["app1:8000", "app3:8100"]
    assert web["protocol"] == "http"
    assert legacy["protocol"] == "uwsgi"
    assert legacy["servers"][0]["address"] == "app2:9001"
    assert legacy["keepalive"] == 0  # uWSGI closes after each request


def test_two_protocols_split_by_server_weight():
    demo = plan()["nginx_sites_resolved"][0]
    shares = {p["name"]: p["share"] for p in demo["locations"][0]["pass"]}
    assert shares == {"web": 40.0, "legacy": 60.0}  # weights 1 + 1 against 3


def test_listen_options_go_once_per_port():
    demo, api = plan(nginx_listen_backlog=1024, nginx_reuseport=True)["nginx_sites_resolved"]
    assert demo["listen"] == [
        {"port": 80, "ssl": False, "options": " default_server backlog=1024 reuseport"},
        {"port": 443, "ssl": True, "options": " default_server backlog=1024 reuseport"},
    ]
    assert api["listen"] == [{"port": 80, "ssl": False, "options": ""}]


def test_rendered_upstreams_and_passes():
    main, http, sites = rendered()
    # auto: 2 x 4096, given by the unit (the sandbox denies setrlimit), not nginx.conf
    assert "\nworker_rlimit_nofile" not in main
    values = {**DEFAULTS, "nginx_upstreams": UPSTREAMS, "nginx_sites": SITES}
    values.update(nginx.plan(values, GROUPS, HOSTVARS))
    dropin = render("etc/systemd/system/nginx.service.d/webtier.conf.j2", values)
    assert "LimitNOFILE=8192\n" in dropin
    assert "worker_connections 4096;" in main
    assert "include webtier/http.conf;" in main  # relative: the candidate copy is checkable
    assert "server app1:8000 weight=1 max_fails=1 fail_timeout=10s;" in http
    assert "keepalive 32;" in http.split("upstream legacy")[0]
    assert "keepalive" not in http.split("upstream legacy")[1].split("}")[0]
    assert 'split_clients "${request_id}" $webtier_split_demo_0' in http
    assert "proxy_pass http://web;" in sites["api"]
    assert "uwsgi_pass legacy;" in sites["demo"]
    assert "return 301 https://$host$request_uri;" in sites["demo"]
    assert "listen 443 ssl default_server backlog=2048;" in sites["demo"]


def test_security_headers_and_no_deprecated_ones():
    sites = rendered()[2]
    assert 'add_header X-Content-Type-Options "nosniff" always;' in sites["demo"]
    assert "X-XSS-Protection" not in sites["demo"]
    assert "Strict-Transport-Security $webtier_hsts" in sites["demo"]
    assert "Strict-Transport-Security" not in sites["api"]  # no TLS there


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"nginx_upstreams": [{"name": "x", "group": "empty"}]},
            r"nginx_upstreams\[0\] \(x\): no servers",
        ),
        (
            {"nginx_upstreams": [{"name": "x", "group": "nope"}]},
            r"nginx_upstreams\[0\] \(x\): no servers",
        ),
        (
            {"nginx_upstreams": [{"name": "Bad-Name", "group": "app_uwsgi"}]},
            r"nginx_upstreams\[0\]\.name",
        ),
        (
            {"nginx_upstreams": [{"name": "x", "group": "app_uwsgi", "method": "fastest"}]},
            r"method='fastest'",
        ),
        (
            {
                "nginx_upstreams": [
                    {"name": "x", "group": "app_gunicorn"},
                    {"name": "x", "group": "app_uwsgi"},
                ]
            },
            "used twice",
        ),
        (
            {
                "nginx_upstreams": [
                    {"name": "x", "servers": [{"address": "a:1"}], "protocol": "http"},
                    {"name": "y", "group": "app_uwsgi"},
                ],
                "nginx_sites": [
                    {"name": "s", "locations": [{"path": "/", "upstream": ["x", "z"]}]}
                ],
            },
            r"nginx_sites\[0\]\.locations\[0\]\.upstream: \['z'\] not in nginx_upstreams",
        ),
        (
            {
                "nginx_sites": [
                    {"name": "s", "locations": [{"path": "/", "upstream": ["web", "web"]}]}
                ]
            },
            "two of different protocols",
        ),
        (
            {"nginx_sites": [{"name": "s", "limit_req": {"zone": "nope"}, "locations": []}]},
            r"nginx_sites\[0\]\.limit_req\.zone='nope' is not defined in nginx_limit_req_zones",
        ),
        (
            {"nginx_sites": [{"name": "s", "tls": {"certificate": "/c"}, "locations": []}]},
            r"nginx_sites\[0\]\.tls\.certificate_key is required",
        ),
        (
            {
                "nginx_sites": [
                    {"name": "a", "default_server": True, "locations": []},
                    {"name": "b", "default_server": True, "locations": []},
                ]
            },
            r"nginx_sites\[1\]\.default_server: port 80 has one already",
        ),
    ],
)
def test_bad_plans_fail_naming_the_variable(overrides, message):
    with pytest.raises(ValueError, match=message):
        plan(**overrides)


def test_one_upstream_cannot_mix_protocols():
    groups = {**GROUPS, "mixed": ["app1", "app2"]}
    with pytest.raises(ValueError, match=r"cannot mix protocols: app1 \(http\), app2 \(uwsgi\)"):
        nginx.upstreams([{"name": "m", "group": "mixed"}], groups, HOSTVARS)


def test_an_app_host_must_say_which_server_it_runs():
    with pytest.raises(ValueError, match="app9: webtier_app_server=None"):
        nginx.upstreams([{"name": "m", "group": "g"}], {"g": ["app9"]}, {"app9": {}})


def test_a_unix_socket_only_gunicorn_cannot_be_balanced_to():
    hostvars = {"app9": {"webtier_app_server": "gunicorn", "gunicorn_bind": ["unix:/run/x.sock"]}}
    with pytest.raises(ValueError, match=r"app9: gunicorn_bind=.* has no TCP address"):
        nginx.upstreams([{"name": "m", "group": "g"}], {"g": ["app9"]}, hostvars)


def test_limits_also_apply_to_requests_that_start_on_the_second_upstream():
    # "return 418" leaves before limit_req's phase: the named location must limit too.
    site = {
        "name": "s",
        "limit_req": {"zone": "z"},
        "locations": [{"path": "/", "upstream": ["web", "legacy"], "limit_req": {"zone": "z"}}],
    }
    sites = rendered(nginx_sites=[site], nginx_limit_req_zones=[{"name": "z", "rate": "1r/s"}])[2]
    second = sites["s"].split("location @s_0_second {")[1].split("}")[0]
    assert "limit_req zone=z nodelay;" in second


def test_a_group_can_be_narrowed_to_the_hosts_of_one_protocol():
    groups = {**GROUPS, "flask": ["app1", "app2"]}
    specs = [
        {"name": "flask_http", "group": "flask", "protocol": "http"},
        {"name": "flask_uwsgi", "group": "flask", "protocol": "uwsgi"},
    ]
    http, uwsgi = nginx.upstreams(specs, groups, HOSTVARS)
    assert [s["address"] for s in http["servers"]] == ["app1:8000"]
    assert [s["address"] for s in uwsgi["servers"]] == ["app2:9001"]


def release_inventory(**lb):
    """One load balancer over app1 and app3 (Gunicorn, upstream web) and app2 (uWSGI,
    upstream legacy): site demo splits / between web and legacy, site api passes / to
    web alone, site solo passes / to legacy alone."""
    groups = {**GROUPS, "appservers": ["app1", "app2", "app3"], "loadbalancers": ["lb1"]}
    sites = [
        *SITES,
        {"name": "solo", "port": 8090, "locations": [{"path": "/", "upstream": "legacy"}]},
    ]
    hostvars = {
        **HOSTVARS,
        "lb1": {"nginx_upstreams": UPSTREAMS, "nginx_sites": sites, **lb},
    }
    return groups, hostvars


def test_a_host_alone_in_a_location_blocks_its_drain_but_a_split_location_counts_its_fallback():
    groups, hostvars = release_inventory()
    # app2 is legacy's only server: site solo would be empty; site demo still has web.
    assert nginx.drain_blockers("app2", "lb1", groups, hostvars) == [
        "lb1: site solo, location / (upstream legacy)"
    ]
    # app1 has app3 in web (site api) and legacy as demo's fallback.
    assert nginx.drain_blockers("app1", "lb1", groups, hostvars) == []


def test_peers_marked_down_or_failing_do_not_count():
    groups, hostvars = release_inventory()
    # app3 failing its probe leaves app1 alone in site api; demo still has legacy (app2).
    assert nginx.drain_blockers("app1", "lb1", groups, hostvars, ["app3:8100"]) == [
        "lb1: site api, location / (upstream web)"
    ]
    assert nginx.drain_blockers("app1", "lb1", groups, hostvars, ["app3:8100", "app2:9001"]) == [
        "lb1: site demo, location / (upstream web, legacy)",
        "lb1: site api, location / (upstream web)",
    ]
    marked = rendered()[1]  # as the nginx role writes it: nothing marked down
    assert "server app3:8100 " in marked
    assert nginx.marked_down(marked) == []
    down = "\n".join(
        line[: line.rindex(";")] + " down;" if "app3:8100" in line else line
        for line in marked.splitlines()
    )
    assert nginx.marked_down(down) == ["app3:8100"]


def test_the_peers_a_load_balancer_probes_are_every_other_server_of_the_hosts_locations():
    groups, hostvars = release_inventory()
    hostvars["app3"] = {**hostvars["app3"], "python_app_health_path": "/ready"}
    probes = nginx.peer_probes("app1", "lb1", groups, hostvars)
    assert probes == [
        {"address": "app3:8100", "protocol": "http", "path": "/ready"},
        {"address": "app2:9001", "protocol": "uwsgi", "path": "/healthz"},
    ]


def test_a_gunicorn_hosts_stand_in_port_is_its_port_plus_one_unless_given():
    assert nginx.app_server("app1", HOSTVARS["app1"])["standin_address"] == "app1:8001"
    given = {**HOSTVARS["app1"], "webtier_app_standin_port": 8500}
    assert nginx.app_server("app1", given)["standin_address"] == "app1:8500"
    assert nginx.app_server("app2", HOSTVARS["app2"])["standin_address"] is None
