"""The Celery application of the shop.

Workers start with ``celery -A shop worker -Q <queue>``; every setting comes
from Django's settings under the ``CELERY_`` prefix (shop/settings.py). Every
task is a ShopTask (shop/base_task.py), which keeps DjangoTask's
``delay_on_commit``.
"""

import os

from celery import Celery, signals
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop", task_cls="shop.base_task:ShopTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def visibility_timeout_problems(celery_app: Celery) -> list[str]:
    """Return what would make Redis hand a running or waiting task out twice."""
    timeout = celery_app.conf.broker_transport_options.get("visibility_timeout", 3600)
    problems = []
    for name, task in sorted(celery_app.tasks.items()):
        limit = task.time_limit or celery_app.conf.task_time_limit
        if name.startswith("celery.") or limit is None:
            continue
        if limit >= timeout:
            problems.append(
                f"{name} may run {limit}s, not less than the broker's visibility "
                f"timeout of {timeout}s: lower its time_limit or raise "
                "SHOP_VISIBILITY_TIMEOUT_SECONDS"
            )
    countdown = settings.SHOP_MAX_COUNTDOWN_SECONDS
    if settings.NOTIFICATIONS_WELCOME_DELAY_SECONDS > countdown:
        problems.append(
            f"NOTIFICATIONS_WELCOME_DELAY_SECONDS "
            f"({settings.NOTIFICATIONS_WELCOME_DELAY_SECONDS}s) is above "
            f"SHOP_MAX_COUNTDOWN_SECONDS ({countdown}s): lower it or raise both"
        )
    if countdown >= timeout:
        problems.append(
            f"countdowns of up to {countdown}s (SHOP_MAX_COUNTDOWN_SECONDS) reach "
            f"the visibility timeout of {timeout}s: raise "
            "SHOP_VISIBILITY_TIMEOUT_SECONDS or schedule such work with beat"
        )
    return problems


@signals.worker_init.connect
def refuse_unsafe_visibility_timeout(sender: object = None, **kwargs: object) -> None:
    app.loader.import_default_modules()
    problems = visibility_timeout_problems(app)
    if problems:
        # SystemExit, not an error: Celery logs and ignores what a signal
        # handler raises, and the worker would start anyway.
        raise SystemExit(
            "refusing to start, tasks could run twice:\n" + "\n".join(problems)
        )


# Beat may be up before the broker (the demo starts both at once): keep
# trying for a minute rather than drop the run.
_AT_START = {
    "retry": True,
    "retry_policy": {"max_retries": 60, "interval_start": 1, "interval_step": 0},
}


@signals.beat_init.connect
def reindex_stale_products_at_start(sender: object = None, **kwargs: object) -> None:
    # The sweep also runs every 30 s; once at start means a catalog imported
    # while no broker was up is searchable as soon as the workers are.
    app.send_task("shop.tasks.reindex_stale_products_task", **_AT_START)


@signals.beat_init.connect
def bill_due_subscriptions_at_start(sender: object = None, **kwargs: object) -> None:
    # The billing run also comes every 5 minutes; once at start means a
    # period due today is charged as soon as the workers are up. An extra run
    # is harmless: every charge is idempotent (orders/billing.py).
    app.send_task("orders.tasks.bill_due_subscriptions_task", **_AT_START)
