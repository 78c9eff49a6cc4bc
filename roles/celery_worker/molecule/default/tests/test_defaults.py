"""The celery_worker role on its documented defaults (defaults.yml), run last: the
scenario's two queues give way to the default one, sized from the CPUs a service gets.
(test_ files run in name order: this one after the scenario's own.)"""

from __future__ import annotations

import pytest
import yaml
from conftest import PYTHON, SCENARIO, as_worker, main_pid, status, tasks, wait_until

from webtier.model import derive

#: The role's documented default queues (defaults/main.yml): one, its unit named after it.
QUEUES = yaml.safe_load((SCENARIO.parents[1] / "defaults" / "main.yml").read_text())[
    "celery_worker_queues"
]
DEFAULT_UNIT = f"celery-demo-{QUEUES[0]['name']}"


@pytest.fixture(scope="module")
def converged(run_playbook, instances):
    rc, out = run_playbook("defaults.yml")
    assert rc == 0, out[-3000:]
    return instances


@pytest.mark.parametrize("name", ["celery-debian13", "celery-debian12"])
def test_on_its_defaults_one_worker_serves_the_default_queue(converged, name):
    host = converged[name]
    cpus = int(host.check_output("systemd-run --quiet --wait --pipe --collect nproc"))
    ((queue, concurrency),) = (
        (q["name"], q["concurrency"]) for q in derive.celery_queues(QUEUES, cpus)
    )
    assert host.service(DEFAULT_UNIT).is_running
    assert host.service(DEFAULT_UNIT).is_enabled
    # the scenario's queues are no longer listed: their workers are stopped and removed
    for old in ("work", "reports"):
        assert not host.service(f"celery-demo-{old}").is_running
        assert not host.file(f"/etc/systemd/system/celery-demo-{old}.service").exists
    # The worker has just been started: it answers the status ping once it is up, and
    # its pool's processes are forked by then.
    worker = f"{queue}@{host.check_output('hostname').strip()}"
    assert wait_until(lambda: worker in status(host, DEFAULT_UNIT)["workers"], 60, step=1)
    seen = status(host, DEFAULT_UNIT)
    assert set(seen["queues"]) == {queue}
    assert seen["workers"][worker]["processes"] == concurrency
    pid = main_pid(host, DEFAULT_UNIT)
    pool = lambda: int(host.run(f"pgrep -P {pid} -c").stdout)  # noqa: E731 (polled below)
    assert wait_until(lambda: pool() == concurrency, 30, step=1), pool()
    # a task sent to the default queue runs there
    task_id = host.check_output(
        f"{as_worker(DEFAULT_UNIT)} {PYTHON} -c "
        '"from webtier_demo_flask.tasks import work; '
        f"print(work.apply_async((1000,), queue='{queue}').id)\""
    ).strip()
    assert "succeeded 1 pending 0" in tasks(host, "wait", 120, task_id, unit=DEFAULT_UNIT)
