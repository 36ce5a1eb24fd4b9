"""The base class of every Celery task of the project.

It keeps DjangoTask (so ``delay_on_commit`` stays) and adds the failure
policy the tasks share:

- retries only on the transient errors a task names in ``autoretry_for``,
  with exponential backoff and jitter, three tries in all by default;
- soft and hard time limits;
- a row that no longer exists ends the task quietly, with an INFO line;
- a message delivered more often than SHOP_TASK_MAX_DELIVERIES without
  finishing (it keeps killing its worker) is dead-lettered, since Redis has
  no delivery limit of its own;
- when the task gives up: one ERROR line with the traceback, and a dead
  letter (shop.deadletters) that can be replayed.
"""

from typing import Any

from billiard.einfo import ExceptionInfo
from celery.contrib.django.task import DjangoTask
from celery.utils.log import get_task_logger
from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist

from shop import deadletters, delivery_counter

logger = get_task_logger(__name__)


class GiveUp(Exception):
    """Raised inside a task to dead-letter it at once, without retrying."""


class ShopTask(DjangoTask):
    # Three tries in all: the first run and two retries, 30 s then about 60 s
    # apart (jitter picks a random delay up to each), capped at 10 minutes.
    max_retries = 2
    retry_backoff = 30
    retry_backoff_max = 600
    retry_jitter = True
    # A task that needs longer says why beside its own limits.
    soft_time_limit = 60
    time_limit = 75
    # Celery logs an "expected" failure at INFO without the traceback; the
    # ERROR line with the traceback is on_failure's, so there is one.
    throws = (Exception,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if not request.is_eager and request.id:
            deliveries = delivery_counter.count(request.id, request.retries)
            if deliveries > settings.SHOP_TASK_MAX_DELIVERIES:
                # Raised here, before the task runs: on_failure records it.
                raise GiveUp(
                    f"delivered {deliveries} times without finishing "
                    f"(limit {settings.SHOP_TASK_MAX_DELIVERIES})"
                )
        try:
            return super().__call__(*args, **kwargs)
        except ObjectDoesNotExist as error:
            logger.info(
                "task skipped task=%s task_id=%s reason=%r",
                self.name,
                request.id,
                str(error),
            )
            return None

    def on_failure(
        self,
        exc: BaseException,
        task_id: str,
        args: tuple,
        kwargs: dict,
        einfo: ExceptionInfo | None,
    ) -> None:
        """Record the given-up task as a dead letter and log it once."""
        request = self.request
        queue = (request.delivery_info or {}).get("routing_key") or ""
        letter = deadletters.record(
            task_name=self.name,
            task_id=task_id,
            queue=queue,
            args=list(args or ()),
            kwargs=dict(kwargs or {}),
            exception=exc,
            traceback=einfo.traceback if einfo else "",
            attempts=(request.retries or 0) + 1,
        )
        logger.error(
            "task gave up task=%s task_id=%s queue=%s attempts=%s "
            "dead_letter_id=%s error=%r",
            self.name,
            task_id,
            queue,
            letter.attempts,
            letter.pk,
            exc,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
