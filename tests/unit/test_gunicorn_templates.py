"""gunicorn.conf.py as rendered from the shared template is valid Python with the hooks
each worker class needs."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import types

import pytest
import yaml

from webtier import ROOT
from webtier.files import configs, firewall
from webtier.files.render import render
from webtier.model import derive
from webtier.model.inventory import load
from webtier.model.topology import roles_of

ROLE = ROOT / "roles/gunicorn"


def rendered(worker_class: str) -> str:
    values = {
        **yaml.safe_load((ROLE / "defaults/main.yml").read_text()),
        **yaml.safe_load((ROLE / "vars/main.yml").read_text()),
        "gunicorn_worker_class": worker_class,
        "python_app_name": "demo",
        "python_app_entrypoint": "app:create_app()",
        "__gunicorn_cpus": 2,
        # what the role derives (webtier.model.derive) for 2 CPUs and the defaults' auto
        "__gunicorn_sizes": derive.gunicorn_sizes(worker_class, "auto", "auto", "auto", 2),
        # the default (auto) with one load balancer, lb1, resolved on the host
        "__gunicorn_forwarded_allow_ips": firewall.trusted_proxies(
            "auto", {"loadbalancers": ["lb1"]}, {"lb1": ["10.0.0.2"]}
        ),
    }
    return render("etc/gunicorn/gunicorn.conf.py.j2", values)


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent", "asgi"])
def test_the_configuration_is_python(worker_class):
    settings: dict = {}
    exec(compile(rendered(worker_class), "gunicorn.conf.py", "exec"), settings)
    assert settings["workers"] == {"sync": 5, "gthread": 4}.get(worker_class, 2)
    assert settings["backlog"] == 2048
    # Forwarded headers are taken from the host itself and the load balancer only.
    assert settings["forwarded_allow_ips"] == "127.0.0.1,10.0.0.2"


class FakeWorker:
    """What the hook touches of Gunicorn's gthread worker: alive and accept()."""

    def __init__(self):
        self.alive = True
        self.accepted = []

    def accept(self, server, listener):
        self.accepted.append(listener)


def test_a_gthread_worker_told_to_stop_accepts_no_more_connections():
    settings: dict = {}
    exec(compile(rendered("gthread"), "gunicorn.conf.py", "exec"), settings)
    worker = FakeWorker()
    settings["post_worker_init"](worker)
    worker.accept("server", "first")
    worker.alive = False  # HUP, TERM or max_requests
    worker.accept("server", "second")
    assert worker.accepted == ["first"]


def test_a_uvicorn_worker_told_to_stop_closes_its_listeners_at_once(monkeypatch):
    """The asgi hook wraps uvicorn's signal handler: the stop request is kept, and the
    listeners close on the loop's next turn, not at uvicorn's next 0.1 s tick."""

    class Listener:
        closed = False

        def close(self):
            self.closed = True

    class Server:  # what the hook touches of uvicorn.server.Server
        def __init__(self):
            self.should_exit = False
            self.servers = [Listener(), Listener()]

        def handle_exit(self, sig, frame):
            self.should_exit = True

    module = types.ModuleType("uvicorn.server")
    module.Server = Server
    monkeypatch.setitem(sys.modules, "uvicorn", types.ModuleType("uvicorn"))
    monkeypatch.setitem(sys.modules, "uvicorn.server", module)
    settings: dict = {}
    exec(compile(rendered("asgi"), "gunicorn.conf.py", "exec"), settings)
    settings["post_worker_init"](FakeWorker())

    server = Server()
    Server.handle_exit(server, signal.SIGTERM, None)  # outside a loop: nothing to close
    assert server.should_exit
    assert not any(listener.closed for listener in server.servers)

    async def serving():
        server.handle_exit(signal.SIGTERM, None)
        assert not any(listener.closed for listener in server.servers)  # not in the handler
        await asyncio.sleep(0)
        return [listener.closed for listener in server.servers]

    assert asyncio.run(serving()) == [True, True]


@pytest.mark.parametrize("worker_class", ["sync", "gevent"])
def test_other_worker_classes_get_no_accept_hook(worker_class):
    assert "post_worker_init" not in rendered(worker_class)


@pytest.mark.parametrize(("fast_path", "extra"), [(True, {"uvloop", "httptools"}), (False, set())])
def test_asgi_requirements_are_a_list_of_pins_to_both_engines(tmp_path, fast_path, extra):
    """The role's vars are read by the pyinfra engine with plain Jinja: each requirement
    must come back as one pin (a list expression would come back as its text)."""
    copy = tmp_path / "env"
    shutil.copytree(ROOT / "inventory/sandbox", copy)
    (copy / "host_vars").mkdir(exist_ok=True)
    (copy / "host_vars/app3.yml").write_text(f"gunicorn_asgi_fast_path: {str(fast_path).lower()}\n")
    inventory = load(copy)
    v = configs.variables(inventory, "app3", roles_of("app3", inventory.members))
    pins = [r for r in v["__gunicorn_requirements"]["asgi"] if r]
    assert all(isinstance(r, str) and "==" in r for r in pins), pins
    assert {r.split("==")[0] for r in pins} == {"gunicorn", "uvicorn-worker", "websockets"} | extra
    expected = "uvicorn_worker.UvicornWorker" if fast_path else "uvicorn_worker.UvicornH11Worker"
    assert v["__gunicorn_worker_classes"]["asgi"] == expected
