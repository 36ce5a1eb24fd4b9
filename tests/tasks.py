"""Tasks that fail on purpose, run by real workers in the failure tests.

Their state lives in Redis (the test broker's database), so the test
process can arrange a failure and read what the worker did.
"""

import os
import signal
import time

import redis
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from shop.models import Product


def state() -> redis.Redis:
    return redis.Redis.from_url(settings.SHOP_TASK_STATE_REDIS_URL)


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=1, retry_jitter=False)
def flaky_task(key: str, failures: int) -> None:
    """Fail with a transient error `failures` times, then succeed."""
    state().rpush(f"{key}:attempts", time.time())
    if state().incr(f"{key}:calls") <= failures:
        raise ConnectionError("the downstream service is not answering")
    state().set(f"{key}:done", 1)


@shared_task(autoretry_for=(ConnectionError,), retry_backoff=1, retry_jitter=False)
def broken_task(key: str) -> None:
    """Fail for good until the test sets `key:fixed`."""
    state().incr(f"{key}:calls")
    if not state().exists(f"{key}:fixed"):
        raise ValueError("the product feed has a malformed row")
    state().set(f"{key}:done", 1)


# Deliberately short, so the test sees the hard limit quickly.
@shared_task(soft_time_limit=1, time_limit=2)
def stuck_task(key: str) -> None:
    """Ignore the soft limit and keep going, until the hard limit stops it."""
    try:
        time.sleep(10)
    except SoftTimeLimitExceeded:
        time.sleep(10)
    state().set(f"{key}:done", 1)


@shared_task
def rename_product_task(product_id: int, name: str) -> None:
    product = Product.objects.get(pk=product_id)
    product.name = name
    product.save(update_fields=["name"])


@shared_task
def poison_task(key: str) -> None:
    """Kill the worker process that runs it, as a segfault or the OOM killer would."""
    state().incr(f"{key}:calls")
    os.kill(os.getpid(), signal.SIGKILL)


@shared_task
def mark_task(key: str, number: int, seconds: float = 0.0) -> None:
    """Note the task's start in order, take a while, then note it done."""
    state().rpush(f"{key}:started", number)
    time.sleep(seconds)
    state().sadd(f"{key}:done", number)
