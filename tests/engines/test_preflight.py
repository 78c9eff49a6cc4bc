"""Preflight refuses bad inventories, with both engines, before any host is contacted.

Each case writes a small inventory whose hosts point at a closed port on 127.0.0.1
(``ansible_port: 9``): any play that reached a host would report it UNREACHABLE. A bad
inventory must stop ``playbooks/preflight.yml`` (Ansible) and the pyinfra deploy, each
with rc != 0 and the case's own message naming host and variable, and the package
(``webtier.checks.preflight.run``) must give the same finding. ``site.yml`` runs that play
first: the sound inventory passes it and only then fails to reach the hosts (which
proves the harness would see a host being touched), and a bad one stops site.yml
before its first tier.
"""

# The expected messages are quoted whole, as a user reads them: some lines are long.
# ruff: noqa: E501
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from webtier import ROOT
from webtier.checks import preflight
from webtier.model.inventory import load

HOSTS = {
    "all": {
        "vars": {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": 9,  # discard: closed here, so any connection fails at once
            "ansible_ssh_common_args": "-o ConnectTimeout=2",
        },
        "children": {
            "loadbalancers": {"hosts": {"lb1": None}},
            "appservers": {
                "children": {
                    "app_gunicorn": {"hosts": {"app1": None}},
                    "app_uwsgi": {"hosts": {"app2": None}},
                }
            },
            "redis": {"hosts": {"redis1": None}},
            "workers": {"hosts": {"worker1": None}},
            "databases": {"hosts": {"db1": None}},
            # db1's backup repository (pgbackrest_repository_group's default: backups)
            "backups": {"hosts": {"backup1": None}},
        },
    }
}
#: pgBackRest's TLS material on both sides (its form is what preflight reads).
PGBACKREST_TLS = {
    "pgbackrest_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "pgbackrest_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    "pgbackrest_tls_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",  # pragma: allowlist secret
}
GROUP_VARS = {
    "all": {"kernel_tuning_somaxconn": 4096, "kernel_tuning_tcp_max_syn_backlog": 4096},
    "appservers": {
        "python_app_name": "demo",
        "python_app_src": "apps/demo_flask",
        "python_app_entrypoint": "webtier_demo_flask:create_app()",
        "python_app_database_group": "databases",
    },
    "app_gunicorn": {
        "webtier_app_server": "gunicorn",
        "gunicorn_backlog": 2048,
        "gunicorn_worker_connections": 2048,
    },
    "app_uwsgi": {"webtier_app_server": "uwsgi", "uwsgi_listen": 2048},
    "loadbalancers": {
        "nginx_worker_connections": 2048,
        "nginx_listen_backlog": 1024,
        "nginx_upstreams": [{"name": "app", "group": "appservers"}],
        "nginx_sites": [{"name": "app", "locations": [{"path": "/", "upstream": "app"}]}],
    },
    # a store: the workers' broker keeps every queued task
    "redis": {
        "redis_tcp_backlog": 1024,
        "redis_app_users": [{"name": "demo", "password": "x"}],
        "redis_admin_password": "y",
        "redis_profile": "store",
    },
    "workers": {
        "python_app_name": "demo",
        "python_app_src": "apps/demo_flask",
        "python_app_redis_group": "redis",
        "python_app_database_group": "databases",
        "celery_worker_app": "webtier_demo_flask.tasks:celery",
    },
    "databases": {
        "postgresql_databases": [{"name": "demo", "user": "demo", "password": "x"}],
        **PGBACKREST_TLS,
    },
    "backups": {
        "pgbackrest_cipher_pass": "a-passphrase-long-enough-for-preflight",  # pragma: allowlist secret
        **PGBACKREST_TLS,
    },
}

# (case, {group or host: variables}, what the message must say). Keys naming a host
# go to host_vars/, the others to group_vars/.
CASES = [
    (
        "a new environment's placeholder left in a host's address",
        {"redis1": {"ansible_host": "CHANGE_ME"}},
        "redis1: ansible_host=CHANGE_ME breaks a placeholder left to fill in",
    ),
    (
        "a new environment's placeholder left in the app's entry point",
        {"appservers": {"python_app_entrypoint": "CHANGE_ME"}},
        "app1: python_app_entrypoint=CHANGE_ME breaks a placeholder left to fill in",
    ),
    (
        "backlog above somaxconn",
        {"app_gunicorn": {"gunicorn_backlog": 8192}},
        "app1: gunicorn_backlog=8192 breaks net.core.somaxconn=4096",
    ),
    (
        "uwsgi listen above somaxconn",
        {"app_uwsgi": {"uwsgi_listen": 5000}},
        "app2: uwsgi_listen=5000 breaks net.core.somaxconn=4096",
    ),
    (
        "nginx backlog above somaxconn",
        {"loadbalancers": {"nginx_listen_backlog": 4097}},
        "lb1: nginx_listen_backlog=4097 breaks net.core.somaxconn=4096",
    ),
    (
        "redis backlog above somaxconn",
        {"redis": {"redis_tcp_backlog": 65535}},
        "redis1: redis_tcp_backlog=65535 breaks net.core.somaxconn=4096",
    ),
    (
        "backlog above the SYN backlog",
        {"all": {"kernel_tuning_tcp_max_syn_backlog": 512}, "redis1": {"redis_tcp_backlog": 1024}},
        "redis1: redis_tcp_backlog=1024 breaks net.ipv4.tcp_max_syn_backlog=512",
    ),
    (
        "somaxconn above the kernel's maximum",
        {"all": {"kernel_tuning_somaxconn": 70000}},
        "lb1: kernel_tuning_somaxconn=70000 breaks the kernel_tuning role's model: at most 65535",
    ),
    (
        "NOFILE above nr_open",
        {"all": {"kernel_tuning_nofile": 2000000}},
        "kernel_tuning_nofile=2000000 breaks fs.nr_open=1048576",
    ),
    (
        "nginx rlimit below its connections",
        {"loadbalancers": {"nginx_worker_rlimit_nofile": 2048}},
        "lb1: nginx_worker_rlimit_nofile=2048 breaks nginx_worker_connections=2048 + 64",
    ),
    (
        "nginx rlimit above NOFILE",
        {"lb1": {"kernel_tuning_nofile": 4096, "nginx_worker_connections": 3000}},
        "lb1: nginx_worker_rlimit_nofile=6000 breaks the NOFILE limit kernel_tuning_nofile=4096",
    ),
    (
        "redis maxclients above NOFILE",
        {"redis1": {"kernel_tuning_nofile": 8000}},
        "redis1: redis_maxclients=10000 breaks the NOFILE limit kernel_tuning_nofile=8000",
    ),
    (
        "gevent connections above NOFILE",
        {
            "app1": {
                "gunicorn_worker_class": "gevent",
                "gunicorn_worker_connections": 5000,
                "kernel_tuning_nofile": 4096,
            }
        },
        "app1: gunicorn_worker_connections=5000 breaks the NOFILE limit kernel_tuning_nofile=4096",
    ),
    (
        "app queues shorter than the load balancer",
        {"loadbalancers": {"nginx_worker_connections": 65536, "nginx_worker_rlimit_nofile": 65600}},
        "gunicorn_backlog=2048 breaks the load balancers' 65536 proxied connections",
    ),
    (
        "a gthread worker cannot hold its host's share of the proxied connections",
        {"app1": {"gunicorn_worker_connections": 1000}},
        "app1: gunicorn_worker_connections=1000 breaks this host's share",
    ),
    (
        "redis maxclients below the app tier",
        {"redis": {"redis_maxclients": 10}, "app2": {"uwsgi_threads": 16}},
        "redis1: redis_maxclients=10 breaks the 84 clients of the app tier's concurrent requests and the workers' processes",
    ),
    (
        "zero gunicorn workers",
        {"app1": {"gunicorn_workers": 0}},
        "app1: gunicorn_workers=0 breaks the gunicorn role's model: a count must be an int >= 1 or auto",
    ),
    (
        "uwsgi processes not a number",
        {"app_uwsgi": {"uwsgi_processes": "many"}},
        "app2: uwsgi_processes=many breaks the uwsgi role's model: a count must be an int >= 1 or auto",
    ),
    (
        "zero CPUs",
        {"app1": {"webtier_cpus": 0}},
        "app1: webtier_cpus=0 breaks the webtier role's model: a count must be an int >= 1",
    ),
    (
        "misspelt variable",
        {"app_gunicorn": {"gunicorn_worker": 3}},
        "app1: gunicorn_worker=3 breaks no gunicorn variable has this name",
    ),
    (
        "unknown worker class",
        {"app1": {"gunicorn_worker_class": "eventlet"}},
        "app1: gunicorn_worker_class=eventlet breaks the gunicorn role's model: Input should be 'sync', 'gthread', 'gevent' or 'asgi'",
    ),
    (
        "worker_connections not an int",
        {"loadbalancers": {"nginx_worker_connections": "lots"}},
        "lb1: nginx_worker_connections=lots breaks the nginx role's model: Input should be a valid integer",
    ),
    (
        "port not an int",
        {"redis": {"redis_port": "six"}},
        "redis1: redis_port=six breaks the redis role's model: Input should be a valid integer",
    ),
    (
        "reuseport not a bool",
        {"loadbalancers": {"nginx_reuseport": "maybe"}},
        "lb1: nginx_reuseport=maybe breaks the nginx role's model: Input should be a valid boolean",
    ),
    (
        # What `-e nginx_access_log=false` gives: the string, which a template takes as true.
        "boolean given as a string",
        {"loadbalancers": {"nginx_access_log": "false"}},
        "lb1: nginx_access_log=false breaks the nginx role's model: Input should be a valid boolean",
    ),
    (
        "ASGI app on a WSGI worker class",
        {"app1": {"python_app_interface": "asgi"}},
        "app1: gunicorn_worker_class=gthread breaks the app's interface python_app_interface=asgi",
    ),
    (
        "uWSGI serving an ASGI app",
        {"app2": {"python_app_interface": "asgi"}},
        "app2: python_app_interface=asgi breaks uWSGI serves WSGI apps only",
    ),
    (
        "uwsgi threads zero on one host",
        {"app2": {"uwsgi_threads": 0}},
        "app2: uwsgi_threads=0 breaks the uwsgi role's model: at least 1",
    ),
    (
        "PgBouncer's pools above PostgreSQL's max_connections",
        {"databases": {"postgresql_max_connections": 20}},
        "db1: postgresql_pgbouncer_default_pool_size=20 breaks postgresql_max_connections=20: PgBouncer may open 25 server connections",
    ),
    (
        "the app tier and the workers above PgBouncer's clients",
        {"databases": {"postgresql_pgbouncer_max_client_conn": 10}},
        "db1: postgresql_pgbouncer_max_client_conn=10 breaks the 50 connections the app tier and the workers may hold at once",
    ),
    (
        "PgBouncer's backlog above somaxconn",
        {"databases": {"postgresql_pgbouncer_listen_backlog": 8192}},
        "db1: postgresql_pgbouncer_listen_backlog=8192 breaks net.core.somaxconn=4096",
    ),
    (
        "PgBouncer's clients above NOFILE",
        {"db1": {"kernel_tuning_nofile": 1024}},
        "db1: postgresql_pgbouncer_max_client_conn=1000 breaks the NOFILE limit kernel_tuning_nofile=1024",
    ),
    (
        "one user for two databases",
        {
            "databases": {
                "postgresql_databases": [
                    {"name": "demo", "user": "demo", "password": "x"},
                    {"name": "shop", "user": "demo", "password": "x"},
                ]
            }
        },
        "db1: postgresql_databases=[{'name': 'demo', 'password': '<hidden>', 'user': 'demo'}, {'name': 'shop', 'password': '<hidden>', 'user': 'demo'}] breaks one entry per database and a user of its own",
    ),
    (
        "an app naming a database the tier does not have",
        {"appservers": {"python_app_database": "shop"}},
        "app1: python_app_database=shop breaks a database of db1's postgresql_databases (demo)",
    ),
    (
        "an app naming a group that is not the database tier",
        {"appservers": {"python_app_database_group": "redis"}},
        "app1: python_app_database_group=redis breaks a group of database hosts (it holds other hosts)",
    ),
    (
        "unknown redis profile",
        {"redis": {"redis_profile": "fast"}},
        "redis1: redis_profile=fast breaks the redis role's model: Input should be 'cache' or 'store'",
    ),
]


def redis_url(hostport: str, password: str = "x") -> str:
    """An app's REDIS_URL (assembled here: the secret scan refuses literal credentials)."""
    return "redis://app:" + password + "@" + hostport + "/0"


#: Mistakes beyond the capacity model's: one per kind of value the model knows, per role,
#: in each config language's syntax, and the rules between hosts (webtier.checks.invariants).
#: A database host of a replicated set (the base inventory's one database host: a set
#: of one, which preflight also refuses).
REPLICATED = {
    "postgresql_replication_group": "databases",
    "postgresql_replication_password": "standbys-own",  # pragma: allowlist secret
}

MISTAKES = [
    # kernel_tuning
    (
        "somaxconn below the minimum",
        {"all": {"kernel_tuning_somaxconn": 100}},
        "lb1: kernel_tuning_somaxconn=100 breaks the kernel_tuning role's model: at least 128",
    ),
    (
        "SYN backlog not a number",
        {"all": {"kernel_tuning_tcp_max_syn_backlog": "lots"}},
        "lb1: kernel_tuning_tcp_max_syn_backlog=lots breaks the kernel_tuning role's model: "
        "Input should be a valid integer",
    ),
    (
        "port range reversed",
        {"all": {"kernel_tuning_ip_local_port_range": {"low": 60000, "high": 2000}}},
        "lb1: kernel_tuning_ip_local_port_range={'high': 2000, 'low': 60000} breaks the kernel_tuning role's model: low below high",
    ),
    (
        "port range with an unknown key",
        {"all": {"kernel_tuning_ip_local_port_range": {"low": 1024, "high": 65000, "step": 2}}},
        "lb1: kernel_tuning_ip_local_port_range.step=2 breaks",
    ),
    (
        "FIN timeout too short",
        {"all": {"kernel_tuning_tcp_fin_timeout": 1}},
        "lb1: kernel_tuning_tcp_fin_timeout=1 breaks the kernel_tuning role's model: at least 5",
    ),
    (
        "syncookies as a string",
        {"all": {"kernel_tuning_tcp_syncookies": "yes"}},
        "lb1: kernel_tuning_tcp_syncookies=yes breaks the kernel_tuning role's model: "
        "Input should be a valid boolean",
    ),
    (
        "timestamps switched off",
        {"all": {"kernel_tuning_dependent_sysctl": {"net.ipv4.tcp_timestamps": 0}}},
        "lb1: kernel_tuning_dependent_sysctl=",
    ),
    (
        "sysctl key with a space",
        {"redis": {"kernel_tuning_dependent_sysctl": {"vm overcommit": 1}}},
        "redis1: kernel_tuning_dependent_sysctl.vm overcommit",
    ),
    (
        "unknown host kind",
        {"all": {"kernel_tuning_host_kind": "vm"}},
        "lb1: kernel_tuning_host_kind=vm breaks",
    ),
    (
        "drop-in name climbing out",
        {"all": {"kernel_tuning_dropin_name": "../../etc/passwd"}},
        "lb1: kernel_tuning_dropin_name=../../etc/passwd breaks the kernel_tuning role's model: NN-name",
    ),
    (
        "nr_open below the minimum",
        {"all": {"kernel_tuning_nr_open": 1000}},
        "lb1: kernel_tuning_nr_open=1000 breaks the kernel_tuning role's model: at least 65536",
    ),
    # firewall
    (
        "SSH port out of range",
        {"all": {"firewall_ssh_port": 70000}},
        "lb1: firewall_ssh_port=70000 breaks the firewall role's model: at most 65535",
    ),
    (
        "firewall rule that ends the ruleset",
        {"all": {"firewall_extra_rules": ["accept; flush ruleset"]}},
        "lb1: firewall_extra_rules[0]=accept; flush ruleset breaks the firewall role's model: one nftables rule",
    ),
    (
        "firewall switch as a string",
        {"all": {"firewall_enabled": "no"}},
        "lb1: firewall_enabled=no breaks the firewall role's model: Input should be a valid boolean",
    ),
    (
        "misspelt firewall variable",
        {"all": {"firewall_ssh_prot": 2222}},
        "lb1: firewall_ssh_prot=2222 breaks no firewall variable has this name",
    ),
    # python_app
    (
        "app name climbing out",
        {"appservers": {"python_app_name": "../evil"}},
        "app1: python_app_name=../evil breaks the python_app role's model: a lower-case name",
    ),
    (
        "app name with a space",
        {"appservers": {"python_app_name": "demo app"}},
        "app1: python_app_name=demo app breaks the python_app role's model: a lower-case name",
    ),
    (
        "app source climbing out",
        {"appservers": {"python_app_src": "../../etc"}},
        "app1: python_app_src=../../etc breaks the python_app role's model: a path without '..'",
    ),
    (
        "app from a directory and from pip",
        {"appservers": {"python_app_pip_spec": "demo==1.0"}},
        "app1: python_app_src=apps/demo_flask breaks exactly one of python_app_src, python_app_pip_spec and python_app_git_repo",
    ),
    (
        "app from a directory and from git",
        {"appservers": {"python_app_git_repo": "git@git.example.com:team/shop.git"}},
        "app1: python_app_src=apps/demo_flask breaks exactly one of python_app_src, python_app_pip_spec and python_app_git_repo. Fix: give the app's directory",
    ),
    (
        "deploy key that is no key",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_git_repo": "git@git.example.com:team/shop.git",
                "python_app_git_key": "hunter2",
            }
        },
        "app1: python_app_git_key=<hidden> breaks a PEM or OpenSSH private key (or empty)",
    ),
    (
        "a pip spec said to be without packaging",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_pip_spec": "shop==1.0",
                "python_app_packaged": False,
            }
        },
        "app1: python_app_packaged=false breaks a source on disk (a pip spec is a package by definition)",
    ),
    (
        "release command once given as a string",
        {
            "appservers": {
                "python_app_release_commands": [
                    {"command": "python manage.py migrate --noinput", "once": "yes"}
                ]
            }
        },
        "app1: python_app_release_commands[0].once=yes breaks the python_app role's model: Input should be a valid boolean",
    ),
    (
        "git repository that is no URL",
        {"appservers": {"python_app_src": "", "python_app_git_repo": "shop"}},
        "app1: python_app_git_repo=shop breaks the python_app role's model: a git repository",
    ),
    (
        "entry point without a callable",
        {"appservers": {"python_app_entrypoint": "demo"}},
        "app1: python_app_entrypoint=demo breaks the python_app role's model: module:callable",
    ),
    (
        "release id climbing out",
        {"app1": {"python_app_release": "../1"}},
        "app1: python_app_release=../1 breaks the python_app role's model: a release id",
    ),
    (
        "no release kept",
        {"appservers": {"python_app_keep_releases": 0}},
        "app1: python_app_keep_releases=0 breaks the python_app role's model: at least 1",
    ),
    (
        "environment name with a space",
        {"appservers": {"python_app_env": {"MY VAR": "1"}}},
        "app1: python_app_env.MY VAR=1 breaks the python_app role's model: an environment variable name",
    ),
    (
        "environment value on two lines",
        {"appservers": {"python_app_env": {"MODE": "a\nEVIL=1"}}},
        "app1: python_app_env.MODE=a EVIL=1 breaks the python_app role's model: a single line",
    ),
    (
        "secret environment value a list",
        {"appservers": {"python_app_secret_env": {"TOKEN": ["a"]}}},
        "app1: python_app_secret_env.TOKEN=<hidden> breaks the python_app role's model: Input should be a valid string",
    ),
    (
        "app running as root",
        {"appservers": {"python_app_user": "root"}},
        "app1: python_app_user=root breaks an app's own user",
    ),
    (
        "app root relative",
        {"appservers": {"python_app_root": "srv/demo"}},
        "app1: python_app_root=srv/demo breaks",
    ),
    (
        "requirement that is an option",
        {"appservers": {"python_app_requirements": ["--index-url http://evil"]}},
        "app1: python_app_requirements[0]=--index-url http://evil breaks the python_app role's model: one pip requirement",
    ),
    (
        "package index not http",
        {"appservers": {"python_app_pip_index_url": "ftp://mirror/simple"}},
        "app1: python_app_pip_index_url=ftp://mirror/simple breaks",
    ),
    (
        "unknown app interface",
        {"appservers": {"python_app_interface": "rsgi"}},
        "app1: python_app_interface=rsgi breaks the python_app role's model: Input should be 'wsgi' or 'asgi'",
    ),
    # gunicorn
    (
        "bind given as a string",
        {"app_gunicorn": {"gunicorn_bind": "0.0.0.0:8000"}},
        "app1: gunicorn_bind=0.0.0.0:8000 breaks the gunicorn role's model: Input should be a valid list",
    ),
    (
        "bind port out of range",
        {"app_gunicorn": {"gunicorn_bind": ["0.0.0.0:99999"]}},
        "app1: gunicorn_bind[0]=0.0.0.0:99999 breaks the gunicorn role's model: a host:port with a port in 1..65535",
    ),
    (
        "trusted proxy that is Python code",
        {
            "app_gunicorn": {
                "gunicorn_forwarded_allow_ips": ['10.0.0.1"; import os; os.system("id"); x="']
            }
        },
        'app1: gunicorn_forwarded_allow_ips[0]=10.0.0.1"; import os;',
    ),
    (
        "worker timeout zero",
        {"app_gunicorn": {"gunicorn_timeout": 0}},
        "app1: gunicorn_timeout=0 breaks the gunicorn role's model: at least 1",
    ),
    (
        "negative keep-alive",
        {"app_gunicorn": {"gunicorn_keepalive": -1}},
        "app1: gunicorn_keepalive=-1 breaks the gunicorn role's model: at least 0",
    ),
    (
        "access log switch as a string",
        {"app_gunicorn": {"gunicorn_access_log": "false"}},
        "app1: gunicorn_access_log=false breaks the gunicorn role's model: Input should be a valid boolean",
    ),
    (
        "Gunicorn version with a shell command",
        {"app_gunicorn": {"gunicorn_version": "23.0.0; rm -rf /"}},
        "app1: gunicorn_version=23.0.0; rm -rf / breaks the gunicorn role's model: a version number",
    ),
    (
        "threads not a number",
        {"app_gunicorn": {"gunicorn_threads": "many"}},
        "app1: gunicorn_threads=many breaks the gunicorn role's model: a count must be an int >= 1 or auto",
    ),
    (
        "negative max_requests",
        {"app_gunicorn": {"gunicorn_max_requests": -5}},
        "app1: gunicorn_max_requests=-5 breaks the gunicorn role's model: at least 0",
    ),
    # uwsgi
    (
        "uWSGI bind without a host",
        {"app_uwsgi": {"uwsgi_bind": "8001"}},
        "app2: uwsgi_bind=8001 breaks the uwsgi role's model: host:port",
    ),
    (
        "uWSGI stats on every address",
        {"app_uwsgi": {"uwsgi_stats": "0.0.0.0:9191"}},
        "app2: uwsgi_stats=0.0.0.0:9191 breaks the uwsgi role's model: a loopback host:port",
    ),
    (
        "uWSGI buffer too small",
        {"app_uwsgi": {"uwsgi_buffer_size": 1024}},
        "app2: uwsgi_buffer_size=1024 breaks the uwsgi role's model: at least 4096",
    ),
    (
        "unknown uWSGI protocol",
        {"app_uwsgi": {"uwsgi_protocol": "fastcgi"}},
        "app2: uwsgi_protocol=fastcgi breaks the uwsgi role's model: Input should be 'uwsgi' or 'http'",
    ),
    (
        "harakiri zero",
        {"app_uwsgi": {"uwsgi_harakiri": 0}},
        "app2: uwsgi_harakiri=0 breaks the uwsgi role's model: at least 1",
    ),
    # nginx: sites, strings in nginx's syntax
    (
        "server_name that injects a directive",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "server_name": "a.example; return 200 owned",
                        "locations": [{"path": "/", "upstream": "app"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].server_name=a.example; return 200 owned breaks the nginx role's model: a host name",
    ),
    (
        "two server names in one string",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "server_name": ["a.example b.example"],
                        "locations": [{"path": "/", "upstream": "app"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].server_name[0]=a.example b.example breaks",
    ),
    (
        "body size with a space",
        {"loadbalancers": {"nginx_client_max_body_size": "10 MB"}},
        "lb1: nginx_client_max_body_size=10 MB breaks the nginx role's model: an nginx size",
    ),
    (
        "rate in an unknown unit",
        {"loadbalancers": {"nginx_limit_req_zones": [{"name": "per_ip", "rate": "10r/x"}]}},
        "lb1: nginx_limit_req_zones[0].rate=10r/x breaks the nginx role's model: an nginx rate",
    ),
    (
        "location path that opens a block",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {"name": "app", "locations": [{"path": "/ { return 200; }", "upstream": "app"}]}
                ]
            }
        },
        "lb1: nginx_sites[0].locations[0].path=/ { return 200; } breaks the nginx role's model: a location path",
    ),
    (
        "location with two actions",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [{"path": "/", "upstream": "app", "return": "204"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations[0]={'path': '/', 'return': '204', 'upstream': 'app'} breaks the nginx role's model: exactly one of upstream, alias and return",
    ),
    (
        "upstream name with capitals",
        {"loadbalancers": {"nginx_upstreams": [{"name": "App-Servers", "group": "appservers"}]}},
        "lb1: nginx_upstreams[0].name=App-Servers breaks the nginx role's model: a lower-case identifier",
    ),
    (
        "upstream with an unknown key",
        {
            "loadbalancers": {
                "nginx_upstreams": [{"name": "app", "group": "appservers", "weight": 3}]
            }
        },
        "lb1: nginx_upstreams[0].weight=3 breaks",
    ),
    (
        "site with an unknown key",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "root": "/var/www",
                        "locations": [{"path": "/", "upstream": "app"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].root=/var/www breaks",
    ),
    (
        "certificate at a relative path",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "tls": {"certificate": "site.crt", "certificate_key": "/etc/k"},
                        "locations": [{"path": "/", "upstream": "app"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].tls.certificate=site.crt breaks the nginx role's model: an absolute path",
    ),
    (
        "header value that closes its quotes",
        {
            "loadbalancers": {
                "nginx_security_headers": {"X-Frame-Options": 'DENY" always; return 200 "x'}
            }
        },
        'lb1: nginx_security_headers.X-Frame-Options=DENY" always;',
    ),
    (
        "gzip level out of range",
        {"loadbalancers": {"nginx_gzip_comp_level": 12}},
        "lb1: nginx_gzip_comp_level=12 breaks the nginx role's model: at most 9",
    ),
    (
        "unknown next-upstream condition",
        {"loadbalancers": {"nginx_next_upstream": ["error", "http_999"]}},
        "lb1: nginx_next_upstream[1]=http_999 breaks",
    ),
    (
        "unknown TLS protocol",
        {"loadbalancers": {"nginx_tls_protocols": ["SSLv3"]}},
        "lb1: nginx_tls_protocols[0]=SSLv3 breaks",
    ),
    (
        "keep-alive timeout with a unit",
        {"loadbalancers": {"nginx_keepalive_timeout": "75s"}},
        "lb1: nginx_keepalive_timeout=75s breaks the nginx role's model: Input should be a valid integer",
    ),
    (
        "status port zero",
        {"loadbalancers": {"nginx_status_port": 0}},
        "lb1: nginx_status_port=0 breaks the nginx role's model: at least 1",
    ),
    (
        "header buffers without a count",
        {"loadbalancers": {"nginx_large_client_header_buffers": "4x8k"}},
        "lb1: nginx_large_client_header_buffers=4x8k breaks the nginx role's model: a count and a size",
    ),
    (
        "proxy timeout in words",
        {"loadbalancers": {"nginx_proxy_timeout": "1 minute"}},
        "lb1: nginx_proxy_timeout=1 minute breaks the nginx role's model: an nginx time",
    ),
    (
        "zero nginx workers",
        {"loadbalancers": {"nginx_worker_processes": 0}},
        "lb1: nginx_worker_processes=0 breaks the nginx role's model: a count must be an int >= 1 or auto",
    ),
    (
        "zone keyed on a bare word",
        {
            "loadbalancers": {
                "nginx_limit_conn_zones": [{"name": "per_ip", "key": "binary_remote_addr"}]
            }
        },
        "lb1: nginx_limit_conn_zones[0].key=binary_remote_addr breaks the nginx role's model: one nginx variable",
    ),
    # redis: secrets and safety
    (
        "Redis auth off on the private network",
        {"redis": {"redis_auth": False, "redis_bind": ["127.0.0.1", "private"]}},
        "redis1: redis_auth=false breaks authentication when Redis listens beyond loopback",
    ),
    (
        "Redis admin password empty",
        {"redis": {"redis_admin_password": ""}},
        "redis1: redis_admin_password= breaks a password while redis_auth is true",
    ),
    (
        "Redis app password a list",
        {"redis": {"redis_app_users": [{"name": "demo", "password": ["x", "y"]}]}},
        "redis1: redis_app_users[0].password=<hidden> breaks the redis role's model: Input should be a valid string",
    ),
    (
        "Redis password on two lines",
        {"redis": {"redis_app_users": [{"name": "demo", "password": "first\nuser evil on"}]}},
        "redis1: redis_app_users[0].password=<hidden> breaks the redis role's model: a single line",
    ),
    (
        "Redis memory in words",
        {"redis": {"redis_maxmemory": "lots"}},
        "redis1: redis_maxmemory=lots breaks",
    ),
    (
        "cache without a memory limit",
        {"redis": {"redis_profile": "cache", "redis_maxmemory": 0}},
        "redis1: redis_maxmemory=0 breaks a limit for the cache profile",
    ),
    (
        "Redis memory above 90 %",
        {"redis": {"redis_maxmemory": "95%"}},
        "redis1: redis_maxmemory=95% breaks at most 90% of RAM",
    ),
    (
        "Redis bind given as a string",
        {"redis": {"redis_bind": "0.0.0.0"}},
        "redis1: redis_bind=0.0.0.0 breaks the redis role's model: Input should be a valid list",
    ),
    (
        "Redis port zero",
        {"redis": {"redis_port": 0}},
        "redis1: redis_port=0 breaks the redis role's model: at least 1",
    ),
    (
        "Sentinel without a replicated set",
        {"redis": {"redis_sentinel": True}},
        "redis1: redis_sentinel=true breaks a replicated set for Sentinel to watch",
    ),
    (
        "replicated set without a password",
        {
            "redis": {
                "redis_replication_group": "redis",
                "redis_bind": ["127.0.0.1", "private"],
                "redis_replication_role": "primary",
            }
        },
        "redis1: redis_replication_password= breaks a password for a replicated set",
    ),
    (
        "Redis directive on two lines",
        {"redis": {"redis_extra_config": {"hz": "10\nrename-command FLUSHALL x"}}},
        "redis1: redis_extra_config.hz=10",
    ),
    (
        "Redis user name with a space",
        {"redis": {"redis_app_users": [{"name": "app user", "password": "x"}]}},
        "redis1: redis_app_users[0].name=app user breaks the redis role's model: one word",
    ),
    (
        "snapshot schedule in words",
        {"redis": {"redis_save": "every hour"}},
        "redis1: redis_save=every hour breaks the redis role's model: pairs of seconds and changes",
    ),
    # webtier (the host itself)
    (
        "unknown app server",
        {"app1": {"webtier_app_server": "django"}},
        "app1: webtier_app_server=django breaks the webtier role's model: Input should be 'gunicorn' or 'uwsgi'",
    ),
    (
        "misspelt webtier variable",
        {"app1": {"webtier_app_sever": "gunicorn"}},
        "app1: webtier_app_sever=gunicorn breaks no webtier variable has this name",
    ),
    # between hosts and tiers (webtier.checks.invariants)
    (
        "two listeners on one port",
        {"app_gunicorn": {"gunicorn_bind": ["0.0.0.0:22"]}},
        "app1: gunicorn_bind[0]=22 breaks firewall_ssh_port listens on port 22 on this host already",
    ),
    (
        "status port on the site's port",
        {"loadbalancers": {"nginx_status_port": 80}},
        "lb1: nginx_sites[0].port=80 breaks nginx_status_port listens on port 80",
    ),
    (
        "upstream keep-alive outlives Gunicorn's",
        {"app_gunicorn": {"gunicorn_keepalive": 30}},
        "lb1: nginx_upstreams[0].keepalive_timeout=60s breaks app1's gunicorn_keepalive=30",
    ),
    (
        "app's Redis on a host outside the Redis tier",
        {"appservers": {"python_app_secret_env": {"REDIS_URL": redis_url("cache9:6379")}}},
        "app1: python_app_secret_env.REDIS_URL=redis://app:***@cache9:6379/0 breaks a host of the Redis tier",
    ),
    (
        "app's Redis on the wrong port",
        {"appservers": {"python_app_secret_env": {"REDIS_URL": redis_url("redis1:6380")}}},
        "app1: python_app_secret_env.REDIS_URL=redis://app:***@redis1:6380/0 breaks redis1's redis_port=6379",
    ),
    (
        "app's Redis password not URL-encoded",
        {
            "appservers": {
                "python_app_secret_env": {"REDIS_URL": redis_url("redis1:6379", "pa/ss#w@rd")}
            }
        },
        "app1: python_app_secret_env.REDIS_URL=redis://app:***@redis1:6379/0 breaks a password the URL can carry",
    ),
    (
        "app's Redis group is not a Redis tier",
        {"appservers": {"python_app_redis_group": "loadbalancers"}},
        "app1: python_app_redis_group=loadbalancers breaks a group of Redis hosts (it holds other hosts)",
    ),
    (
        "proxy protocol without the load balancers that send it",
        {"loadbalancers": {"nginx_proxy_protocol": True}},
        # (the value is spelled true by Ansible, True by pyinfra)
        "breaks the load balancers that send it, in nginx_real_ip_from",
    ),
    # celery_worker and the queue's broker
    (
        "broker on a cache-profile Redis",
        {"redis": {"redis_profile": "cache"}},
        "worker1: python_app_redis_group=redis breaks a broker that keeps every queued task: "
        "redis1 runs redis_profile cache (maxmemory-policy allkeys-lru, no persistence)",
    ),
    (
        "broker whose append-only file is switched off",
        {"redis": {"redis_extra_config": {"appendonly": "no"}}},
        "worker1: python_app_redis_group=redis breaks a broker that keeps every queued task: "
        "redis1 runs appendonly no",
    ),
    (
        "worker without a broker",
        {"workers": {"python_app_redis_group": ""}},
        "worker1: python_app_redis_group=(empty) breaks the worker's broker",
    ),
    (
        "visibility timeout below the hard time limit",
        {"workers": {"celery_worker_visibility_timeout": 60}},
        "worker1: celery_worker_visibility_timeout=60 breaks longer than celery_worker_time_limit=90",
    ),
    (
        "soft time limit not below the hard one",
        {"workers": {"celery_worker_soft_time_limit": 90}},
        "worker1: celery_worker_soft_time_limit=90 breaks below celery_worker_time_limit=90",
    ),
    (
        "a queue listed twice",
        {"workers": {"celery_worker_queues": [{"name": "work"}, {"name": "work"}]}},
        "worker1: celery_worker_queues=[{'name': 'work'}, {'name': 'work'}] breaks one entry per queue",
    ),
    (
        "a worker's concurrency of zero",
        {"workers": {"celery_worker_queues": [{"name": "work", "concurrency": 0}]}},
        "worker1: celery_worker_queues[0].concurrency=0 breaks",
    ),
    (
        "a misspelt worker variable",
        {"workers": {"celery_worker_prefetch": 4}},
        "worker1: celery_worker_prefetch=4 breaks no celery_worker variable has this name",
    ),
    (
        "an app server without an entry point",
        {"appservers": {"python_app_entrypoint": ""}},
        "app1: python_app_entrypoint=(empty) breaks the callable gunicorn serves",
    ),
    # Issue 36: a replicated database set (pg_auto_failover)
    (
        "a replicated database set of one host",
        {"databases": REPLICATED},
        "db1: postgresql_replication_group=databases breaks an inventory group of two or "
        "more database hosts",
    ),
    (
        "a replicated database set without the standbys' password",
        {"databases": {"postgresql_replication_group": "databases"}},
        "db1: postgresql_replication_password= breaks a password when the host replicates",
    ),
    (
        "a replicated host whose WAL no standby can replay",
        {"databases": {**REPLICATED, "postgresql_extra_config": {"wal_level": "minimal"}}},
        "db1: postgresql_extra_config.wal_level=minimal breaks replica or logical on a "
        "replicated host",
    ),
    (
        "a replicated host whose standby refuses queries",
        {"databases": {**REPLICATED, "postgresql_extra_config": {"hot_standby": "off"}}},
        "db1: postgresql_extra_config.hot_standby=off breaks on on a replicated host",
    ),
    # Issue 36: backups (pgBackRest)
    (
        "a database host's repository that is itself a database host",
        {"databases": {"pgbackrest_repository_group": "databases"}},
        "db1: pgbackrest_repository_group=databases breaks a group whose first host keeps "
        "the repository: its first host, db1, is not in backups",
    ),
    (
        "a repository group the inventory lacks",
        {"databases": {"pgbackrest_repository_group": "vaults"}},
        "db1: pgbackrest_repository_group=vaults breaks a group whose first host keeps the "
        "repository: the inventory has no such group, or it is empty",
    ),
    (
        "a repository passphrase too short to protect it",
        {"backups": {"pgbackrest_cipher_pass": "secret"}},  # pragma: allowlist secret
        "backup1: pgbackrest_cipher_pass=(hidden) breaks a passphrase of 20 characters or more",
    ),
    (
        "full and differential backups at the same time",
        {"backups": {"pgbackrest_diff_schedule": "Sun *-*-* 01:00:00"}},
        "backup1: pgbackrest_diff_schedule=Sun *-*-* 01:00:00 breaks another time than "
        "pgbackrest_full_schedule",
    ),
    (
        "a backup schedule systemd cannot read",
        {"backups": {"pgbackrest_full_schedule": "every sunday"}},
        "backup1: pgbackrest_full_schedule=every sunday breaks the pgbackrest role's model: a "
        "systemd calendar event",
    ),
    (
        "a retention of no full backup",
        {"backups": {"pgbackrest_retention_full": 0}},
        "backup1: pgbackrest_retention_full=0 breaks the pgbackrest role's model: at least 1",
    ),
    (
        "a database host backed up without its TLS key",
        {"db1": {"pgbackrest_tls_key": ""}},
        "db1: pgbackrest_tls_key=(hidden) breaks a PEM private key: backup1 backs this host "
        "up over TLS",
    ),
]


#: Issue 35: operator mistakes in the tiers added last round (PostgreSQL, Celery, release
#: commands, git and pip sources, forwarded headers, TLS material, Redis ACLs, nginx
#: locations) and values the model cannot resolve; each refused by both engines.
SECURITY_MISTAKES = [
    # PostgreSQL
    (
        "pg database name with a quote",
        {
            "databases": {
                "postgresql_databases": [{"name": "demo'x", "user": "demo", "password": "x"}]
            }
        },
        "db1: postgresql_databases[0].name=demo'x breaks the postgresql role's model: a plain PostgreSQL name: lower-case lette",
    ),
    (
        "pg user upper-case",
        {
            "databases": {
                "postgresql_databases": [{"name": "demo", "user": "Demo", "password": "x"}]
            }
        },
        "db1: postgresql_databases[0].user=Demo breaks the postgresql role's model: a plain PostgreSQL name: lower-case lette",
    ),
    (
        "pg empty password",
        {"databases": {"postgresql_databases": [{"name": "demo", "user": "demo", "password": ""}]}},
        "db1: postgresql_databases[0].password= breaks the postgresql role's model: Value should have at least 1 item after v",
    ),
    (
        "pg password with a line break",
        {
            "databases": {
                "postgresql_databases": [
                    {
                        "name": "demo",
                        "user": "demo",
                        "password": "a\nb",  # pragma: allowlist secret (a test's own)
                    }
                ]
            }
        },
        "db1: postgresql_databases[0].password=<hidden> breaks the postgresql role's model: a single line. Fix: remove the line break",
    ),
    (
        "pg user postgres",
        {
            "databases": {
                "postgresql_databases": [{"name": "demo", "user": "postgres", "password": "x"}]
            }
        },
        "db1: postgresql_databases=[{'name': 'demo', 'password': '<hidden>', 'user': 'postgres'}] breaks an app user that is not the superuser postgres. Fix: name the database",
    ),
    (
        "pg database template1",
        {
            "databases": {
                "postgresql_databases": [{"name": "template1", "user": "demo", "password": "x"}]
            }
        },
        "db1: postgresql_databases=[{'name': 'template1', 'password': '<hidden>', 'user': 'demo'}] breaks an app database, not template1 (PostgreSQL's own: every new database c",
    ),
    (
        "pg extra key in a database",
        {
            "databases": {
                "postgresql_databases": [
                    {"name": "demo", "user": "demo", "password": "x", "superuser": True}
                ]
            }
        },
        "db1: postgresql_databases[0].superuser=true breaks the postgresql role's model: Extra inputs are not permitted. Fix: remo",
    ),
    (
        "pg extra config with a quote",
        {"databases": {"postgresql_extra_config": {"log_line_prefix": "it's"}}},
        "db1: postgresql_extra_config.log_line_prefix=it's breaks the postgresql role's model: one line, no quote. Fix: remove it",
    ),
    (
        "pg extra config listen_addresses",
        {"databases": {"postgresql_extra_config": {"listen_addresses": "*"}}},
        "db1: postgresql_extra_config.listen_addresses=* breaks a setting the role does not own (the role sets listening, files, authe",
    ),
    (
        "pg extra config hba_file",
        {"databases": {"postgresql_extra_config": {"hba_file": "/tmp/hba"}}},
        "db1: postgresql_extra_config.hba_file=/tmp/hba breaks a setting the role does not own (the role sets listening, files, authe",
    ),
    (
        "pg extra config password_encryption md5",
        {
            "databases": {
                "postgresql_extra_config": {
                    "password_encryption": "md5"  # pragma: allowlist secret (a test's own)
                }
            }
        },
        "db1: postgresql_extra_config.password_encryption=<hidden> breaks a setting the role does not own (the role sets listening, files, authe",
    ),
    (
        "pg shared_buffers in bytes words",
        {"databases": {"postgresql_shared_buffers": "1 GB"}},
        "db1: postgresql_shared_buffers=1 GB breaks the postgresql role's model: Input should be 'auto'. Fix: use one of t",
    ),
    (
        "pg client groups empty",
        {"databases": {"postgresql_client_groups": []}},
        "db1: postgresql_client_groups=[] breaks the postgresql role's model: List should have at least 1 item after va",
    ),
    (
        "pg pool mode unknown",
        {"databases": {"postgresql_pgbouncer_pool_mode": "pooled"}},
        "db1: postgresql_pgbouncer_pool_mode=pooled breaks the postgresql role's model: Input should be 'transaction', 'session'",
    ),
    (
        "pg pgbouncer port privileged string",
        {"databases": {"postgresql_pgbouncer_port": "6432; id"}},
        "db1: postgresql_pgbouncer_port=6432; id breaks the postgresql role's model: Input should be a valid integer, unable t",
    ),
    (
        "pg max connections below pools",
        {"databases": {"postgresql_max_connections": 10}},
        "db1: postgresql_pgbouncer_default_pool_size=20 breaks postgresql_max_connections=10: PgBouncer may open 25 server connection",
    ),
    # Celery
    (
        "celery app with a shell char",
        {"workers": {"celery_worker_app": "tasks:celery;id"}},
        "worker1: celery_worker_app=tasks:celery;id breaks the celery_worker role's model: module:attribute of the app's Celery i",
    ),
    (
        "celery app without attribute",
        {"workers": {"celery_worker_app": "webtier_demo_flask.tasks"}},
        "worker1: celery_worker_app=webtier_demo_flask.tasks breaks the celery_worker role's model: module:attribute of the app's Celery i",
    ),
    (
        "celery queue name with a space",
        {"workers": {"celery_worker_queues": [{"name": "work now"}]}},
        "worker1: celery_worker_queues[0].name=work now breaks the celery_worker role's model: a queue name. Fix: for example work",
    ),
    (
        "celery queue name with a slash",
        {"workers": {"celery_worker_queues": [{"name": "../etc"}]}},
        "worker1: celery_worker_queues[0].name=../etc breaks the celery_worker role's model: a queue name. Fix: for example work",
    ),
    (
        "celery loglevel lower-case",
        {"workers": {"celery_worker_loglevel": "info"}},
        "worker1: celery_worker_loglevel=info breaks the celery_worker role's model: Input should be 'DEBUG', 'INFO', 'WARN",
    ),
    (
        "celery prefetch zero",
        {"workers": {"celery_worker_prefetch_multiplier": 0}},
        "worker1: celery_worker_prefetch_multiplier=0 breaks the celery_worker role's model: at least 1. Fix: set celery_worker_pre",
    ),
    (
        "celery task seconds negative",
        {"workers": {"celery_worker_queues": [{"name": "work", "task_seconds": -1}]}},
        "worker1: celery_worker_queues[0].task_seconds=-1 breaks the celery_worker role's model: Input should be greater than 0. Fix: s",
    ),
    (
        "celery cpu weight zero",
        {"workers": {"celery_worker_cpu_weight": 0}},
        "worker1: celery_worker_cpu_weight=0 breaks the celery_worker role's model: at least 1. Fix: set celery_worker_cpu",
    ),
    # release commands
    (
        "release command with a shell pipe",
        {
            "appservers": {
                "python_app_release_commands": [
                    {"command": "python manage.py migrate | tee /tmp/x"}
                ]
            }
        },
        "app1: python_app_release_commands[0].command=python manage.py migrate | tee /tmp/x breaks the python_app role's model: a program of the release's virtualenv and",
    ),
    (
        "release command with command substitution",
        {"appservers": {"python_app_release_commands": [{"command": "python manage.py $(id)"}]}},
        "app1: python_app_release_commands[0].command=python manage.py $(id) breaks the python_app role's model: a program of the release's virtualenv and",
    ),
    (
        "release command as an absolute path",
        {"appservers": {"python_app_release_commands": [{"command": "/bin/sh -c id"}]}},
        "app1: python_app_release_commands[0].command=/bin/sh -c id breaks the python_app role's model: a program of the release's virtualenv and",
    ),
    (
        "release command climbing out of the venv",
        {"appservers": {"python_app_release_commands": [{"command": "../../../bin/sh -c id"}]}},
        "app1: python_app_release_commands[0].command=../../../bin/sh -c id breaks the python_app role's model: a program of the release's virtualenv and",
    ),
    (
        "release command with an unknown key",
        {
            "appservers": {
                "python_app_release_commands": [
                    {"command": "python manage.py migrate", "as_root": True}
                ]
            }
        },
        "app1: python_app_release_commands[0].as_root=true breaks the python_app role's model: Extra inputs are not permitted. Fix: remo",
    ),
    # git and pip sources
    (
        "git URL with a token",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_git_repo": "https://oauth2:ghp_abc@github.com/team/shop.git",  # pragma: allowlist secret (a test's own)
            }
        },
        "app1: python_app_git_repo=https://***@github.com/team/shop.git breaks the python_app role's model: a repository URL without credentials (a t",
    ),
    (
        "git URL with a user and password over ssh",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_git_repo": "ssh://deploy:pw@git.example.com/team/shop.git",  # pragma: allowlist secret (a test's own)
            }
        },
        "app1: python_app_git_repo=ssh://***@git.example.com/team/shop.git breaks the python_app role's model: a repository URL without credentials (a t",
    ),
    (
        "git URL over plain http",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_git_repo": "http://git.example.com/team/shop.git",
            }
        },
        "app1: python_app_git_repo=http://git.example.com/team/shop.git breaks the python_app role's model: a git repository: https://..., ssh://...,",
    ),
    (
        "git URL as an option",
        {"appservers": {"python_app_src": "", "python_app_git_repo": "--upload-pack=touch /tmp/x"}},
        "app1: python_app_git_repo=--upload-pack=touch /tmp/x breaks the python_app role's model: a git repository: https://..., ssh://...,",
    ),
    (
        "git version as an option",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_git_repo": "git@git.example.com:team/shop.git",
                "python_app_git_version": "--orphan",
            }
        },
        "app1: python_app_git_version=--orphan breaks the python_app role's model: a tag, branch or commit. Fix: v1.2.0",
    ),
    (
        "git version with a shell char",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_git_repo": "git@git.example.com:team/shop.git",
                "python_app_git_version": "v1;id",
            }
        },
        "app1: python_app_git_version=v1;id breaks the python_app role's model: a tag, branch or commit. Fix: v1.2.0",
    ),
    (
        "pip spec an index option",
        {
            "appservers": {
                "python_app_src": "",
                "python_app_pip_spec": "--index-url=https://evil.example/simple",
            }
        },
        "app1: python_app_pip_spec=--index-url=https://evil.example/simple breaks the python_app role's model: one pip spec (demo==1.2.0, demo[extra]>=1",
    ),
    (
        "pip spec an editable option",
        {"appservers": {"python_app_src": "", "python_app_pip_spec": "-e"}},
        "app1: python_app_pip_spec=-e breaks the python_app role's model: one pip spec (demo==1.2.0, demo[extra]>=1",
    ),
    (
        "pip spec with a command",
        {"appservers": {"python_app_src": "", "python_app_pip_spec": "shop;id"}},
        "app1: python_app_pip_spec=shop;id breaks the python_app role's model: one pip spec (demo==1.2.0, demo[extra]>=1",
    ),
    (
        "pip spec with command substitution",
        {"appservers": {"python_app_src": "", "python_app_pip_spec": "shop$(id)"}},
        "app1: python_app_pip_spec=shop$(id) breaks the python_app role's model: one pip spec (demo==1.2.0, demo[extra]>=1",
    ),
    (
        "pip index with a command",
        {"appservers": {"python_app_pip_index_url": "https://pypi.example/simple;id"}},
        "app1: python_app_pip_index_url=https://pypi.example/simple;id breaks the python_app role's model: an http(s) URL (or empty) without shell c",
    ),
    (
        "pip index with a backtick",
        {"appservers": {"python_app_pip_index_url": "https://pypi.example/`id`"}},
        "app1: python_app_pip_index_url=https://pypi.example/`id` breaks the python_app role's model: an http(s) URL (or empty) without shell c",
    ),
    (
        "pip index not a URL",
        {"appservers": {"python_app_pip_index_url": "--extra-index-url"}},
        "app1: python_app_pip_index_url=--extra-index-url breaks the python_app role's model: an http(s) URL (or empty) without shell c",
    ),
    (
        "requirement as an option",
        {"appservers": {"python_app_requirements": ["--index-url=https://evil.example"]}},
        "app1: python_app_requirements[0]=--index-url=https://evil.example breaks the python_app role's model: one pip requirement (flask==3.1.0, 'gunic",
    ),
    (
        "requirement with a trailing command",
        {"appservers": {"python_app_requirements": ["flask;id"]}},
        "app1: python_app_requirements[0]=flask;id breaks the python_app role's model: one pip requirement (flask==3.1.0, 'gunic",
    ),
    (
        "requirements file climbing out",
        {"appservers": {"python_app_requirements_file": "../../etc/passwd"}},
        "app1: python_app_requirements_file=../../etc/passwd breaks the python_app role's model: a path without '..'. Fix: give the direct",
    ),
    (
        "source climbing out",
        {"appservers": {"python_app_src": "apps/../../etc"}},
        "app1: python_app_src=apps/../../etc breaks the python_app role's model: a path without '..'. Fix: give the direct",
    ),
    (
        "system package with an option",
        {"appservers": {"python_app_system_packages": ["--allow-unauthenticated"]}},
        "app1: python_app_system_packages[0]=--allow-unauthenticated breaks the python_app role's model: a Debian package name. Fix: libpq5",
    ),
    # forwarded headers
    (
        "gunicorn trusts every IPv4 address",
        {"app_gunicorn": {"gunicorn_forwarded_allow_ips": ["0.0.0.0/0"]}},
        "app1: gunicorn_forwarded_allow_ips=['0.0.0.0/0'] breaks the addresses of the load balancers, not 0.0.0.0/0 (it trusts every ad",
    ),
    (
        "gunicorn trusts every IPv6 address",
        {"app_gunicorn": {"gunicorn_forwarded_allow_ips": ["10.0.0.1", "::/0"]}},
        "app1: gunicorn_forwarded_allow_ips=['10.0.0.1', '::/0'] breaks the addresses of the load balancers, not ::/0 (it trusts every address",
    ),
    (
        "gunicorn trusts a name",
        {"app_gunicorn": {"gunicorn_forwarded_allow_ips": ["lb1.example.com"]}},
        "app1: gunicorn_forwarded_allow_ips[0]=lb1.example.com breaks the gunicorn role's model: an IP address or network (10.0.0.5, 10.0.0.",
    ),
    (
        "nginx real IP from every address",
        {"loadbalancers": {"nginx_real_ip_from": ["0.0.0.0/0"]}},
        "lb1: nginx_real_ip_from=['0.0.0.0/0'] breaks the fronting load balancers' addresses or networks, not 0.0.0.0/0 (it",
    ),
    (
        "nginx real IP from every IPv6 address",
        {"loadbalancers": {"nginx_real_ip_from": ["::/0"]}},
        "lb1: nginx_real_ip_from=['::/0'] breaks the fronting load balancers' addresses or networks, not ::/0 (it trust",
    ),
    (
        "nginx real IP from a star",
        {"loadbalancers": {"nginx_real_ip_from": ["*"]}},
        "lb1: nginx_real_ip_from=['*'] breaks the fronting load balancers' addresses or networks, not * (it trusts e",
    ),
    (
        "nginx real IP header with a space",
        {"loadbalancers": {"nginx_real_ip_header": "X Forwarded For"}},
        "lb1: nginx_real_ip_header=X Forwarded For breaks the nginx role's model: a header name. Fix: X-Forwarded-For",
    ),
    # TLS material
    (
        "redis TLS without a certificate",
        {
            "redis": {
                "redis_tls": True,
                "redis_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "redis_tls_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",  # pragma: allowlist secret (a test's own)
            }
        },
        "redis1: redis_tls_cert= breaks a PEM certificate while redis_tls is true. Fix: paste the PEM text (--",
    ),
    (
        "redis TLS key not a key",
        {
            "redis": {
                "redis_tls": True,
                "redis_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "redis_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "redis_tls_key": "secret",
            }
        },
        "redis1: redis_tls_key=<hidden> breaks a PEM private key while redis_tls is true. Fix: set it in the environm",
    ),
    (
        "redis TLS CA with a shell char",
        {
            "redis": {
                "redis_tls": True,
                "redis_tls_ca_cert": "$(id)",
                "redis_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            }
        },
        "redis1: redis_tls_ca_cert=$(id) breaks the redis role's model: PEM text. Fix: paste the PEM text as it is",
    ),
    (
        "pgbouncer TLS without the CA the apps verify against",
        {
            "databases": {
                "postgresql_pgbouncer_tls": True,
                "postgresql_pgbouncer_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "postgresql_pgbouncer_tls_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",  # pragma: allowlist secret (a test's own)
            }
        },
        "db1: postgresql_pgbouncer_tls_ca_cert= breaks a PEM certificate while postgresql_pgbouncer_tls is true.",
    ),
    (
        "pgbouncer TLS key not a key",
        {
            "databases": {
                "postgresql_pgbouncer_tls": True,
                "postgresql_pgbouncer_tls_ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "postgresql_pgbouncer_tls_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                "postgresql_pgbouncer_tls_key": "secret",
            }
        },
        "db1: postgresql_pgbouncer_tls_key=<hidden> breaks a PEM private key while postgresql_pgbouncer_tls is true.",
    ),
    (
        "pgbouncer TLS switch as a word",
        {"databases": {"postgresql_pgbouncer_tls": "yes please"}},
        "db1: postgresql_pgbouncer_tls=yes please breaks the postgresql role's model",
    ),
    (
        "nginx TLS key path relative",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "tls": {"certificate": "/etc/ssl/a.crt", "certificate_key": "a.key"},
                        "locations": [{"path": "/", "upstream": "app"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].tls.certificate_key=a.key breaks the nginx role's model: an absolute path of letters, digits and ._/+@-",
    ),
    (
        "nginx TLS certificate path with a semicolon",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "tls": {
                            "certificate": "/etc/ssl/a.crt;",
                            "certificate_key": "/etc/ssl/a.key",
                        },
                        "locations": [{"path": "/", "upstream": "app"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].tls.certificate=/etc/ssl/a.crt; breaks the nginx role's model: an absolute path of letters, digits and ._/+@-",
    ),
    (
        "nginx TLS 1.0 without the legacy flag",
        {"loadbalancers": {"nginx_tls_protocols": ["TLSv1", "TLSv1.2"]}},
        "lb1: nginx_tls_protocols=['TLSv1', 'TLSv1.2'] breaks TLS 1.2 or later (TLSv1 are deprecated by RFC 8996 and broken by downg",
    ),
    (
        "nginx TLS cipher with a space",
        {"loadbalancers": {"nginx_tls_ciphers": ["ECDHE RSA"]}},
        "lb1: nginx_tls_ciphers[0]=ECDHE RSA breaks the nginx role's model: an OpenSSL cipher name. Fix: ECDHE-RSA-AES128-",
    ),
    # Redis ACLs and users
    (
        "redis app user with a space",
        {"redis": {"redis_admin_user": "admin evil"}},
        "redis1: redis_admin_user=admin evil breaks the redis role's model: one word of letters, digits, '_', '.', '-'. Fi",
    ),
    (
        "redis admin user named default",
        {"redis": {"redis_admin_user": "default"}},
        "redis1: redis_admin_user=default breaks a user of its own, not default (the ACL file switches Redis's default",
    ),
    (
        "redis app and admin the same user",
        {"redis": {"redis_app_users": [{"name": "admin", "password": "x"}]}},
        "redis1: redis_admin_user=admin breaks a user of its own, not admin as in redis_app_users[0].name (each has its",
    ),
    (
        "redis app user reaching every key through a glob prefix",
        {"redis": {"redis_app_users": [{"name": "demo", "password": "x", "prefix": "*"}]}},
        "redis1: redis_app_users[0].prefix=* breaks the redis role's model: a key prefix of letters, digits",
    ),
    (
        "redis app user with a key rule in its commands",
        {"redis": {"redis_app_users": [{"name": "demo", "password": "x", "commands": "~* +@all"}]}},
        "redis1: redis_app_users[0].commands=~* +@all breaks the redis role's model: ACL command rules only",
    ),
    (
        "redis app commands giving every channel",
        {"redis": {"redis_app_commands": "&* +@all -@admin"}},
        "redis1: redis_app_commands=&* +@all -@admin breaks the redis role's model: ACL command rules only",
    ),
    (
        "redis app commands switching the password off",
        {"redis": {"redis_app_commands": "nopass +@all"}},
        "redis1: redis_app_commands=nopass +@all breaks the redis role's model: ACL command rules only",
    ),
    (
        "redis app prefix reaching Sentinel's channel",
        {
            "redis": {
                "redis_app_users": [{"name": "demo", "password": "x", "prefix": "__sentinel__:"}]
            }
        },
        "redis1: redis_app_users[0].prefix=__sentinel__: breaks a key prefix of the app's own, not '__sentinel__:'",
    ),
    (
        "redis two apps, one prefix inside the other's",
        {
            "redis": {
                "redis_app_users": [
                    {"name": "demo", "password": "x"},
                    {"name": "shop", "password": "y", "prefix": "demo:shop:"},
                ]
            }
        },
        "redis1: redis_app_users[1].prefix=demo:shop: breaks a key prefix apart from demo's",
    ),
    (
        "redis two app users of one name",
        {
            "redis": {
                "redis_app_users": [
                    {"name": "demo", "password": "x"},
                    {"name": "demo", "password": "y", "prefix": "b:"},
                ]
            }
        },
        "redis1: redis_app_users[0].name=demo breaks a user of its own, not demo as in redis_app_users[1].name",
    ),
    (
        "redis app user named default",
        {"redis": {"redis_app_users": [{"name": "default", "password": "x"}]}},
        "redis1: redis_app_users[0].name=default breaks a user of its own, not default",
    ),
    (
        "redis app user without a password",
        {"redis": {"redis_app_users": [{"name": "demo"}]}},
        "breaks a password for demo while redis_auth is true",
    ),
    (
        "redis app user with a key list of its own",
        {"redis": {"redis_app_users": [{"name": "demo", "password": "x", "keys": "~*"}]}},
        "redis1: redis_app_users[0].keys=~* breaks the redis role's model: Extra inputs are not permitted",
    ),
    (
        "redis app prefix with a space",
        {"redis": {"redis_app_users": [{"name": "demo", "password": "x", "prefix": "a b"}]}},
        "redis1: redis_app_users[0].prefix=a b breaks the redis role's model",
    ),
    (
        "redis unrestricted reason that writes a second ACL line",
        {
            "redis": {
                "redis_app_users": [
                    {"name": "demo", "password": "x", "unrestricted": "a\nuser evil on"}
                ]
            }
        },
        "breaks the redis role's model: one line. Fix: say why",
    ),
    (
        "app naming a Redis user its set lacks",
        {"appservers": {"python_app_redis_group": "redis", "python_app_redis_user": "shop"}},
        "app1: python_app_redis_user=shop breaks a user of its own among redis1's redis_app_users (demo)",
    ),
    (
        "worker of an app without a Redis user",
        {"workers": {"python_app_name": "jobs"}},
        "worker1: python_app_name=jobs breaks a user of its own among redis1's redis_app_users (demo)",
    ),
    # nginx locations
    (
        "location path with a space",
        {
            "loadbalancers": {
                "nginx_sites": [{"name": "app", "locations": [{"path": "/a b", "upstream": "app"}]}]
            }
        },
        "lb1: nginx_sites[0].locations[0].path=/a b breaks the nginx role's model: a location path (/, /static/, = /healthz, ^~ /",
    ),
    (
        "location path with a brace",
        {
            "loadbalancers": {
                "nginx_sites": [{"name": "app", "locations": [{"path": "/a}", "upstream": "app"}]}]
            }
        },
        "lb1: nginx_sites[0].locations[0].path=/a} breaks the nginx role's model: a location path (/, /static/, = /healthz, ^~ /",
    ),
    (
        "location regex",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {"name": "app", "locations": [{"path": "~ \\.php$", "upstream": "app"}]}
                ]
            }
        },
        "lb1: nginx_sites[0].locations[0].path=~ \\.php$ breaks the nginx role's model: a location path (/, /static/, = /healthz, ^~ /",
    ),
    (
        "location alias relative",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [
                            {"path": "/", "upstream": "app"},
                            {"path": "/static/", "alias": "static/"},
                        ],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations[1].alias=static/ breaks the nginx role's model: an absolute path of letters, digits and ._/+@-",
    ),
    (
        "location alias without a trailing slash",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [
                            {"path": "/", "upstream": "app"},
                            {"path": "/static/", "alias": "/srv/static"},
                        ],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations[1]={'alias': '/srv/static', 'path': '/static/'} breaks the nginx role's model: a path and an alias that both end with '/' or",
    ),
    (
        "location alias off by a slash",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [
                            {"path": "/", "upstream": "app"},
                            {"path": "/static", "alias": "/srv/static/"},
                        ],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations[1]={'alias': '/srv/static/', 'path': '/static'} breaks the nginx role's model: a path and an alias that both end with '/' or",
    ),
    (
        "location return with a quote",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {"name": "app", "locations": [{"path": "/", "return": '301 https://x"; }'}]}
                ]
            }
        },
        "lb1: nginx_sites[0].locations[0].return=301 https://x\"; } breaks the nginx role's model: a status and an optional URL or text. Fix: 404",
    ),
    (
        "location twice in a site",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [
                            {"path": "/", "upstream": "app"},
                            {"path": "/", "upstream": "app"},
                        ],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations=[{'path': '/', 'upstream': 'app'}, {'path': '/', 'upstream': 'app'}] breaks one location per path (/ given twice: nginx -t refuses a duplicate loc",
    ),
    (
        "location with an upstream and a return",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [{"path": "/", "upstream": "app", "return": "404"}],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations[0]={'path': '/', 'return': '404', 'upstream': 'app'} breaks the nginx role's model: exactly one of upstream, alias and return. Fix",
    ),
    (
        "location alias to the root",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [
                            {"path": "/", "upstream": "app"},
                            {"path": "/files/", "alias": "/"},
                        ],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations[1]={'alias': '/', 'path': '/files/'} breaks the nginx role's model: an alias to the app's own files, not to / (a s",
    ),
    (
        "location alias to /etc",
        {
            "loadbalancers": {
                "nginx_sites": [
                    {
                        "name": "app",
                        "locations": [
                            {"path": "/", "upstream": "app"},
                            {"path": "/files/", "alias": "/etc/"},
                        ],
                    }
                ]
            }
        },
        "lb1: nginx_sites[0].locations[1]={'alias': '/etc/', 'path': '/files/'} breaks the nginx role's model: an alias to the app's own files, not to /etc/",
    ),
    # values the model cannot resolve
    (
        "unresolved expression",
        {"appservers": {"python_app_health_path": "{{ nowhere_defined }}"}},
        "app1: python_app_health_path=(?) breaks a value the python_app role's model can check; it does not resolve: 'n",
    ),
    (
        "expression that yields an expression",
        {"appservers": {"python_app_health_path": "{% raw %}{{ x }}{% endraw %}"}},
        "app1: python_app_health_path={{ x }} breaks a value the python_app role's model can check; it does not resolve: 'x",
    ),
]


def write_inventory(root: Path, overrides: dict) -> Path:
    inventory = root / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "host_vars").mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump(HOSTS))
    hosts = set(load_hosts())
    group_vars = {g: dict(v) for g, v in GROUP_VARS.items()}
    host_vars: dict[str, dict] = {}
    for name, variables in overrides.items():
        target = host_vars if name in hosts else group_vars
        target.setdefault(name, {}).update(variables)
    for folder, data in (("group_vars", group_vars), ("host_vars", host_vars)):
        for name, variables in data.items():
            (inventory / folder / f"{name}.yml").write_text(yaml.safe_dump(variables))
    return inventory


def load_hosts() -> list[str]:
    found: list[str] = []

    def walk(node: dict) -> None:
        found.extend((node.get("hosts") or {}).keys())
        for child in (node.get("children") or {}).values():
            walk(child or {})

    walk(HOSTS["all"])
    return found


def ansible(inventory: Path, playbook: str = "playbooks/preflight.yml") -> subprocess.Popen:
    return subprocess.Popen(
        ["ansible-playbook", "-i", str(inventory), playbook],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def pyinfra(inventory: Path, command: str = "inventory") -> subprocess.Popen:
    """The pyinfra engine on ``inventory``: by default the inventory module that
    ``pyinfra pyinfra_deploy/inventory.py pyinfra_deploy/deploy.py`` loads before it
    connects to any host, where preflight runs (``command="deploy"``: the whole command,
    as the control cases run it)."""
    argv = {
        "inventory": ["python", "pyinfra_deploy/inventory.py"],
        "deploy": ["pyinfra", "-y", "pyinfra_deploy/inventory.py", "pyinfra_deploy/deploy.py"],
    }[command]
    return subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "WEBTIER_INVENTORY": str(inventory)},
    )


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, " ".join(out.split())


def test_there_are_the_cases_each_with_its_own_message():
    assert len(CASES) >= 20
    assert len(MISTAKES) >= 60
    assert len(SECURITY_MISTAKES) >= 60
    expected = [e for _, _, e in CASES + MISTAKES + SECURITY_MISTAKES]
    assert len(set(expected)) == len(expected)


def test_sound_inventory_passes_preflight_then_reaches_for_the_hosts(tmp_path):
    """The control case: what makes the bad cases' "no host touched" observable."""
    inventory = write_inventory(tmp_path, {})
    found = load(inventory)
    assert preflight.run(found.all_host_vars(), found.members) == []
    _, out = finish(ansible(inventory, "site.yml"))
    assert "Preflight passed for 7 hosts" in out, out
    assert "UNREACHABLE" in out, out


def test_a_bad_inventory_stops_site_yml_and_pyinfra_before_any_host(tmp_path):
    inventory = write_inventory(tmp_path, {"app_gunicorn": {"gunicorn_backlog": 8192}})
    rc, out = finish(ansible(inventory, "site.yml"))
    assert rc != 0
    assert "app1: gunicorn_backlog=8192 breaks net.core.somaxconn=4096" in out, out
    assert "PLAY [Kernel tuning" not in out, out
    assert "UNREACHABLE" not in out, out
    rc, out = finish(pyinfra(inventory, "deploy"))
    assert rc != 0
    assert "app1: gunicorn_backlog=8192 breaks net.core.somaxconn=4096" in out, out
    assert "--> Loading inventory..." in out, out
    assert "Connecting to hosts" not in out, out


@pytest.mark.parametrize(
    ("case", "overrides", "expected"),
    CASES + MISTAKES + SECURITY_MISTAKES,
    ids=[c[0] for c in CASES + MISTAKES + SECURITY_MISTAKES],
)
def test_bad_inventory_stops_both_engines_before_any_host(tmp_path, case, overrides, expected):
    inventory = write_inventory(tmp_path, overrides)
    runs = {"ansible": ansible(inventory), "pyinfra": pyinfra(inventory)}
    for engine, proc in runs.items():
        rc, out = finish(proc)
        assert rc != 0, (engine, out)
        assert expected in out, (engine, case, out)
        assert "Preflight found" in out, (engine, out)
        assert "UNREACHABLE" not in out, (engine, out)
        assert "Connecting to hosts" not in out, (engine, out)
    # The package gives the same finding without an engine.
    found = load(inventory)
    messages = [str(f) for f in preflight.run(found.all_host_vars(), found.members)]
    assert any(expected in " ".join(m.split()) for m in messages), messages
