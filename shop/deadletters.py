"""The dead-letter store: tasks that gave up, kept until replayed or purged.

The base task (shop/base_task.py) records one row per given-up task; staff
replay them from the admin or ``manage.py deadletters``, once the cause is
fixed. A periodic check alerts when too many are waiting.
"""

import logging
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import mail_admins
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from shop.models import AlertState, DeadLetter

logger = logging.getLogger(__name__)

DEPTH_ALERT = "dead-letter-depth"


def record(
    *,
    task_name: str,
    task_id: str,
    queue: str,
    args: list,
    kwargs: dict,
    exception: BaseException,
    traceback: str,
    attempts: int,
) -> DeadLetter:
    """Store a given-up task; the same task id twice updates its one row."""
    letter, _ = DeadLetter.objects.update_or_create(
        task_id=task_id,
        replayed_at=None,
        defaults={
            "task_name": task_name,
            "queue": queue,
            "args": args,
            "kwargs": kwargs,
            "exception": f"{type(exception).__name__}: {exception}"[:2000],
            "traceback": traceback,
            "attempts": attempts,
        },
    )
    return letter


def waiting() -> QuerySet[DeadLetter]:
    """Return the dead letters not yet replayed."""
    return DeadLetter.objects.filter(replayed_at__isnull=True)


def select(
    task: str | None = None,
    queue: str | None = None,
    older_than: timedelta | None = None,
    include_replayed: bool = False,
) -> QuerySet[DeadLetter]:
    """Return dead letters, filtered by task name, queue and age.

    Only the waiting ones unless ``include_replayed``: a purge clears the
    replayed ones too.
    """
    letters = DeadLetter.objects.all() if include_replayed else waiting()
    if task:
        letters = letters.filter(task_name=task)
    if queue:
        letters = letters.filter(queue=queue)
    if older_than is not None:
        letters = letters.filter(failed_at__lte=timezone.now() - older_than)
    return letters.order_by("failed_at", "pk")


def replay(letter: DeadLetter) -> str | None:
    """Send the dead letter's task again, to its queue; return the new task id.

    The row is claimed under a lock, so two replays of one letter send once.
    """
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=letter.pk)
        if letter.replayed_at is not None:
            return None
        options = {"queue": letter.queue} if letter.queue else {}
        result = current_app.send_task(
            letter.task_name, args=letter.args, kwargs=letter.kwargs, **options
        )
        letter.replayed_at = timezone.now()
        letter.replay_task_id = result.id
        letter.save(update_fields=["replayed_at", "replay_task_id"])
    logger.info(
        "dead letter replayed dead_letter_id=%s task=%s new_task_id=%s",
        letter.pk,
        letter.task_name,
        result.id,
    )
    return result.id


def check_depth() -> bool:
    """Alert on-call once when the waiting dead letters pass the threshold.

    Returns whether the alert is active. The alert fires when the depth goes
    above SHOP_DEAD_LETTER_ALERT_DEPTH and stays quiet until it has fallen
    back to the threshold or below: one alert per episode, not per check.
    """
    depth = waiting().count()
    threshold = settings.SHOP_DEAD_LETTER_ALERT_DEPTH
    with transaction.atomic():
        state, _ = AlertState.objects.select_for_update().get_or_create(
            name=DEPTH_ALERT
        )
        if depth <= threshold:
            if state.active:
                state.active = False
                state.save(update_fields=["active", "changed_at"])
                logger.info("dead letter depth back to normal depth=%s", depth)
            return False
        if state.active:
            return True
        state.active = True
        state.save(update_fields=["active", "changed_at"])
    logger.error(
        "dead letter depth above threshold depth=%s threshold=%s", depth, threshold
    )
    mail_admins(
        f"{depth} dead letters waiting",
        f"{depth} tasks have given up and wait in the dead-letter store "
        f"(alert threshold {threshold}). Look at them in the admin under "
        "Dead letters, fix the cause, then replay them.",
    )
    return True
