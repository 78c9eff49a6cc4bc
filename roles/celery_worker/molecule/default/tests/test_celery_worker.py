"""The worker tier: one unit per queue, tasks that survive their process's death, and
releases that lose no task. Counts are printed (pytest -s). A whole worker killed (its
tasks redelivered after the visibility timeout, at kombu's next sweep: up to 100 s
more) is a drill on the sandbox, `make drills DRILL=worker-kill`, not a test here."""

from __future__ import annotations

import time

import pytest
from conftest import (
    AS_WORKER,
    PYTHON,
    QUEUES,
    journal_count,
    main_pid,
    status,
    tasks,
    wait_until,
)

#: burn(n) rounds for a task that runs a couple of seconds on this machine's cores
#: (about 60 ns a round), well under the scenario's 40 s soft limit even when loaded
#: (over 10 s beside the other lanes of `make test`).
LONG = 25_000_000
SHORT = 1_000_000


@pytest.fixture(scope="module", params=["celery-debian13", "celery-debian12"])
def host(request, instances):
    return instances[request.param]


def test_one_unit_per_queue_with_its_processes(host):
    for queue, concurrency in QUEUES.items():
        unit = f"celery-demo-{queue}"
        assert host.service(unit).is_running
        assert host.service(unit).is_enabled
        pid = main_pid(host, unit)
        assert host.check_output(f"ps -o user= -p {pid}").strip() == "demo"
        # the pool: one process per unit of concurrency, children of the main process
        children = host.check_output(f"pgrep -P {pid} -c || true").strip()
        assert int(children) == concurrency, unit


def test_status_shows_the_queues_and_every_worker(host):
    seen = status(host)
    assert set(seen["queues"]) == set(QUEUES)
    hostname = host.check_output("hostname").strip()
    for queue, concurrency in QUEUES.items():
        worker = seen["workers"][f"{queue}@{hostname}"]
        assert worker["state"] == "online"
        assert worker["processes"] == concurrency


def test_queued_tasks_run_and_their_results_come_back(host):
    ids = tasks(host, "enqueue", 20, SHORT).split()
    assert len(ids) == 20
    assert "succeeded 20 pending 0" in tasks(host, "wait", 120, *ids)


def _cpu_ticks(host, pid: int) -> dict[int, int]:
    """CPU time (clock ticks, user + system) of each pool process of the worker ``pid``."""
    out = host.run(
        f"for p in $(pgrep -P {pid}); do echo $p $(cut -d' ' -f14,15 /proc/$p/stat); done"
    ).stdout
    return {int(p): int(u) + int(s) for p, u, s in (line.split() for line in out.splitlines())}


def _one_running_task(host) -> tuple[str, int]:
    """Enqueue one long task and return (its id, the epoch second it was sent) once a
    pool process is computing it: received by the worker (its journal), then a pool
    process's CPU time growing. Killed before that, the task would not yet be the pool's,
    and only the visibility timeout would bring it back. (Celery's own "active" takes a
    status round trip of seconds, longer than the task runs: it cannot be polled here.)"""
    since = int(host.check_output("date +%s"))
    (task_id,) = tasks(host, "enqueue", 1, LONG).split()
    assert wait_until(lambda: journal_count(host, f"[{task_id}] received", since) >= 1, 30)
    pid = main_pid(host)

    def computing() -> bool:
        before = _cpu_ticks(host, pid)
        time.sleep(0.3)
        after = _cpu_ticks(host, pid)
        return any(after.get(p, 0) - ticks >= 3 for p, ticks in before.items())

    assert wait_until(computing, 30, step=0)
    return task_id, since


def test_a_task_whose_process_is_killed_runs_again(host):
    """SIGKILL to the pool's processes mid-task: the task goes back to the queue at once
    (late acknowledgement, reject on worker lost) and completes."""
    task_id, since = _one_running_task(host)
    host.check_output(f"pkill -KILL -P {main_pid(host)}")
    done = tasks(host, "wait", 90, task_id, check=False)
    journal = host.run(f"journalctl -u celery-demo-work --since @{since} --no-pager -o cat")
    assert "succeeded 1 pending 0" in done, journal.stdout[-3000:]
    received = journal_count(host, f"[{task_id}] received", since)
    print(f"\n{host.backend.get_hostname()}: pool killed mid-task; received {received}x, succeeded")
    assert received >= 2


def test_a_restart_loses_no_task(instances):
    """Tasks arrive (5 a second) on both hosts while the workers restart, as the role
    restarts them for a release (a warm shutdown: running tasks finish, reserved ones go
    back to the queue); every task sent completes. A whole release under a stream of
    tasks is `make drills DRILL=worker-release` on the sandbox."""
    stop = "/run/webtier-stream.stop"
    pids = {}
    for name, h in instances.items():
        h.check_output(f"rm -f {stop} /root/stream.ids")
        pids[name] = main_pid(h)
        h.check_output(
            f"nohup {AS_WORKER} {PYTHON} -m "
            f"webtier_demo_flask.tasks stream 5 {SHORT} {stop} >/root/stream.ids 2>/dev/null &"
        )
    time.sleep(4)
    for h in instances.values():
        h.check_output("systemctl restart celery-demo-work")
    time.sleep(4)  # tasks sent to the new workers too
    for h in instances.values():  # both streams stop now, not one host's wait later
        h.check_output(f"touch {stop}")
    for name, h in instances.items():
        assert wait_until(lambda h=h: not h.run("pgrep -f 'tasks strea[m]'").stdout, 30)
        ids = h.check_output("cat /root/stream.ids").split()
        verdict = tasks(h, "wait", 120, *ids, check=False)
        print(f"\n{name}: a restart under a stream of tasks: {len(ids)} sent, {verdict.strip()}")
        assert f"succeeded {len(ids)} pending 0" in verdict
        assert main_pid(h) != pids[name]
        hostname = h.check_output("hostname").strip()
        assert status(h)["workers"][f"work@{hostname}"]["processed"] > 0
