"""Tasks only the queue benchmark sends (``manage.py bench_queues``).

Its workers load this module with ``--include shop.bench_tasks``; the shop's
own workers never see these tasks.
"""

import time

import redis
from celery import Task, shared_task
from django.conf import settings

_client: redis.Redis | None = None


def bench_state() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.SHOP_TASK_STATE_REDIS_URL)
    return _client


@shared_task
def probe_task(key: str, sent_at: float) -> None:
    """Note how long the message waited between its sending and its start."""
    bench_state().rpush(key, time.time() - sent_at)


@shared_task
def busy_task(milliseconds: float) -> None:
    """Stand for a low-priority task that keeps a process busy a moment."""
    deadline = time.perf_counter() + milliseconds / 1000
    while time.perf_counter() < deadline:
        pass


# The baseline: Celery's plain Task, none of the shop's policy.
@shared_task(base=Task)
def bare_noop_task() -> None:
    return None


@shared_task
def shop_noop_task() -> None:
    return None
