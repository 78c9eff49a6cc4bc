"""The demo's Celery app: CPU-bound work that belongs on the queue, not in the web workers.

The web app enqueues (``/work?n=...&mode=queue``) and a worker of the celery_worker role
runs it. Both build the app here, from the same environment the python_app role writes
(the variables ``redis_client`` reads): with ``REDIS_SENTINELS`` the broker and the
result store are the primary the Sentinels name (``sentinel://`` for Celery), so the
queue follows a failover; otherwise ``REDIS_URL``. The user and password come from
``REDIS_USERNAME`` and ``REDIS_PASSWORD``, never from a URL.

The worker's reliability settings (late acknowledgement, redelivery of a task whose
worker died, prefetch, time limits, the broker's visibility timeout) are the role's:
it applies them over this app at start (webtier_celery.py), so a user's own Celery app
needs none of them. This module only says where the broker is, and the tasks.

    python -m webtier_demo_flask.tasks enqueue COUNT N   # COUNT burn(N) tasks, their ids
    python -m webtier_demo_flask.tasks stream RATE N STOP  # RATE a second until STOP exists
    python -m webtier_demo_flask.tasks wait SECONDS ID...  # how many of them succeeded
"""

from __future__ import annotations

import os
import sys
import time

from celery import Celery

#: The queue the demo's work goes to (a worker unit of the celery_worker role serves it).
QUEUE = os.environ.get("WEBTIER_WORK_QUEUE", "work")


def _broker() -> dict:
    db = os.environ.get("REDIS_DB", "0")
    sentinels = [a.strip() for a in os.environ.get("REDIS_SENTINELS", "").split(",") if a.strip()]
    secret = {
        "broker_user": os.environ.get("REDIS_USERNAME") or None,
        "broker_password": os.environ.get("REDIS_PASSWORD") or None,
        "redis_username": os.environ.get("REDIS_USERNAME") or None,
        "redis_password": os.environ.get("REDIS_PASSWORD") or None,
    }
    # Every key and channel of the queue and its results under the prefix of the app's
    # Redis user (REDIS_KEY_PREFIX): the only ones it may reach.
    prefix = os.environ.get("REDIS_KEY_PREFIX", "")
    options = {"global_keyprefix": prefix} if prefix else {}
    if not sentinels:
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        return {
            "broker_url": url,
            "result_backend": url,
            "broker_transport_options": options,
            "result_backend_transport_options": options,
            **secret,
        }
    urls = ";".join(f"sentinel://{address}/{db}" for address in sentinels)
    options |= {
        "master_name": os.environ.get("REDIS_SENTINEL_SERVICE", "webtier"),
        "sentinel_kwargs": {"password": os.environ.get("REDIS_SENTINEL_PASSWORD") or None},
    }
    return {
        "broker_url": urls,
        "result_backend": urls,
        "broker_transport_options": options,
        "result_backend_transport_options": options,
        **secret,
    }


celery = Celery("webtier_demo_flask")
celery.conf.update(
    task_default_queue=QUEUE,
    # JSON only: a message that another client planted is data, never code to unpickle.
    accept_content=["json"],
    task_serializer="json",
    result_serializer="json",
    result_accept_content=["json"],
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    **_broker(),
)


def burn(n: int) -> int:
    """CPU-bound: n rounds of integer arithmetic (about 50 ns each in CPython), no I/O."""
    value = 0
    for i in range(n):
        value = (value * 31 + i) % 1_000_003
    return value


@celery.task(name="webtier_demo_flask.work")
def work(n: int) -> dict:
    started = time.process_time()
    value = burn(n)
    return {"n": n, "value": value, "cpu_ms": round((time.process_time() - started) * 1000, 2)}


def main(argv: list[str]) -> int:
    if argv[:1] == ["enqueue"] and len(argv) == 3:
        for _ in range(int(argv[1])):
            print(work.delay(int(argv[2])).id)
        return 0
    if argv[:1] == ["stream"] and len(argv) == 4:
        rate, n, stop = float(argv[1]), int(argv[2]), argv[3]
        start = time.monotonic()
        sent = 0
        # at most 10 minutes: a stream nobody stops ends by itself
        while not os.path.exists(stop) and (elapsed := time.monotonic() - start) < 600:
            if sent < elapsed * rate:
                print(work.delay(n).id, flush=True)
                sent += 1
            else:
                time.sleep(0.01)
        return 0
    if argv[:1] == ["wait"] and len(argv) >= 2:
        deadline = time.monotonic() + float(argv[1])
        pending = set(argv[2:])
        done = 0
        while pending and time.monotonic() < deadline:
            for task_id in list(pending):
                if celery.AsyncResult(task_id).successful():
                    pending.discard(task_id)
                    done += 1
            time.sleep(0.5)
        print(f"succeeded {done} pending {len(pending)}")
        return 0 if not pending else 1
    print(__doc__.split("\n\n")[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
