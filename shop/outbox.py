"""The transactional outbox: task messages that survive a broker outage.

``send_on_commit`` writes each message as an OutboxMessage row in the open
transaction, beside the rows it describes, and registers one on-commit
callback that publishes them: a rollback leaves no row and sends nothing, a
commit always leaves the rows. A row the broker did not take (it was down)
stays unsent; the beat-scheduled sweep (``relay_outbox_task``, every 5 s)
publishes it once the broker is back, and purges sent rows after
SHOP_OUTBOX_RETENTION_HOURS.

Delivery is at least once: a relay that published a row and died before
marking it sent leaves it to the sweep, which publishes it again with the same
task id. Every consumer is idempotent, so the effect still happens once: the
order emails go through notifications.delivery.send_once (one per key), stock
movements are unique per reference and product, the sales record is one per
order, and the search index task rewrites entries from the current rows.
The shared id also makes the base task count a message published again as
one more delivery of it (SHOP_TASK_MAX_DELIVERIES, shop/base_task.py).
"""

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import redis
from celery import Signature, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from kombu import Producer
from kombu.exceptions import OperationalError

from shop.models import OutboxMessage
from shop.queues import ROUTES

logger = logging.getLogger(__name__)

# What a publish raises once the publish retry policy has given up on the
# broker: the rest of the batch would fail the same way, so it is not tried.
BROKER_UNREACHABLE = (OperationalError, redis.ConnectionError, redis.TimeoutError)

# Rows claimed per transaction. Their row locks are held while they are
# published, and on SQLite the transaction holds the database's write lock:
# a publish to a local Redis takes about 1 ms (100 took 90 to 130 ms), so a
# batch holds them about 0.1 s. A broker that refuses connections ends the
# batch at its first row, after the publish retry policy's 0.3 s.
BATCH_SIZE = 100
# Rows one sweep publishes at most, about 10 s of work, well inside the
# task's 60 s soft time limit; the next sweep carries on.
SWEEP_LIMIT = 10_000
# Rows of sent messages one sweep deletes at most.
PURGE_LIMIT = 1000


@dataclass
class Relayed:
    """What one relay did: rows claimed, published, and left unsent."""

    claimed: int = 0
    sent: int = 0
    unsent: int = 0
    broker_unreachable: bool = False
    # The last row claimed, as (created_at, pk): where the next batch starts.
    last: tuple[datetime, int] | None = None

    def add(self, other: "Relayed") -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.unsent += other.unsent
        self.broker_unreachable = self.broker_unreachable or other.broker_unreachable
        self.last = other.last


def send_on_commit(messages: Iterable[Signature]) -> list[OutboxMessage]:
    """Write the messages to the outbox now; publish them once this commits."""
    rows = OutboxMessage.objects.bulk_create(
        OutboxMessage(
            task_name=message.task,
            args=list(message.args),
            kwargs=dict(message.kwargs),
            queue=message.options.get("queue")
            or ROUTES.get(message.task, settings.CELERY_TASK_DEFAULT_QUEUE),
            task_id=message.options.get("task_id") or str(uuid.uuid4()),
        )
        for message in messages
    )
    # Robust: the rows are committed whatever happens here; an error in the
    # relay (the database gone after the commit) is logged, the request
    # carries on, and the sweep publishes the rows later.
    transaction.on_commit(partial(relay, [row.pk for row in rows]), robust=True)
    return rows


def relay(message_ids: list[int]) -> Relayed:
    """Publish these outbox rows unless another relay has or is doing so."""
    pending = OutboxMessage.objects.filter(pk__in=message_ids, sent_at__isnull=True)
    return _relay_batch(pending, limit=len(message_ids))


def relay_pending(created_before: datetime, limit: int = SWEEP_LIMIT) -> Relayed:
    """Publish unsent rows written before ``created_before``, oldest first."""
    pending = OutboxMessage.objects.filter(
        sent_at__isnull=True, created_at__lt=created_before
    )
    relayed = Relayed()
    while relayed.claimed < limit:
        size = min(BATCH_SIZE, limit - relayed.claimed)
        batch = pending
        if relayed.last is not None:
            # Keyset paging: a row that failed for a reason of its own stays
            # unsent and is not claimed again by this sweep.
            created_at, pk = relayed.last
            batch = pending.filter(
                Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk)
            )
        done = _relay_batch(batch, limit=size)
        relayed.add(done)
        if done.broker_unreachable or done.claimed < size:
            break
    return relayed


def purge_sent(sent_before: datetime, limit: int = PURGE_LIMIT) -> int:
    """Delete rows of messages sent before ``sent_before``; return how many."""
    ids = list(
        OutboxMessage.objects.filter(sent_at__lt=sent_before)
        .order_by("sent_at")
        .values_list("pk", flat=True)[:limit]
    )
    deleted, _ = OutboxMessage.objects.filter(pk__in=ids).delete()
    return deleted


def sweep() -> Relayed:
    """Publish what the on-commit relays left unsent, and purge old sent rows.

    Rows younger than SHOP_OUTBOX_SWEEP_MIN_AGE_SECONDS are left to the
    relay of the request that wrote them, which is about to publish them.
    """
    started = time.monotonic()
    now = timezone.now()
    relayed = relay_pending(
        now - timedelta(seconds=settings.SHOP_OUTBOX_SWEEP_MIN_AGE_SECONDS)
    )
    purged = purge_sent(now - timedelta(hours=settings.SHOP_OUTBOX_RETENTION_HOURS))
    if relayed.claimed or purged:
        logger.info(
            "outbox sweep sent=%s unsent=%s purged=%s duration_ms=%d",
            relayed.sent,
            relayed.unsent,
            purged,
            (time.monotonic() - started) * 1000,
        )
    return relayed


def _relay_batch(pending: QuerySet[OutboxMessage], limit: int) -> Relayed:
    """Claim up to ``limit`` unsent rows, publish them and record the outcome."""
    with transaction.atomic():
        # The claim: on PostgreSQL a second relay skips the rows this one has
        # locked; on SQLite the IMMEDIATE transaction makes it wait for the
        # commit, and it then reads these rows as sent. Either way no row is
        # published by two relays at once.
        claim = pending.select_for_update(skip_locked=True).order_by("created_at", "pk")
        rows = list(claim[:limit])
        if not rows:
            return Relayed()

        sent, failed, broker_error = _publish_all(rows)
        OutboxMessage.objects.filter(pk__in=sent).update(sent_at=timezone.now())
        for pk, reason in failed.items():
            OutboxMessage.objects.filter(pk=pk).update(
                attempts=F("attempts") + 1, last_error=reason
            )
        if broker_error is not None:
            # The row that met the outage and the rows after it, not tried.
            untried = [row.pk for row in rows if row.pk not in {*sent, *failed}]
            OutboxMessage.objects.filter(pk__in=untried).update(
                attempts=F("attempts") + 1, last_error=_describe(broker_error)
            )

    relayed = Relayed(
        claimed=len(rows),
        sent=len(sent),
        unsent=len(rows) - len(sent),
        broker_unreachable=broker_error is not None,
        last=(rows[-1].created_at, rows[-1].pk),
    )
    if broker_error is not None:
        logger.warning(
            "outbox relay stopped, broker unreachable sent=%s unsent=%s error=%s",
            relayed.sent,
            relayed.unsent,
            broker_error,
        )
    else:
        logger.debug("outbox relayed sent=%s unsent=%s", relayed.sent, relayed.unsent)
    return relayed


def _publish_all(
    rows: list[OutboxMessage],
) -> tuple[list[int], dict[int, str], Exception | None]:
    """Publish rows in order until the broker is unreachable.

    Return the ids published, the reasons of the rows that failed on their
    own, and the error that stopped the batch, if one did.
    """
    sent: list[int] = []
    failed: dict[int, str] = {}
    try:
        with current_app.producer_or_acquire() as producer:
            for row in rows:
                try:
                    _publish(row, producer)
                except BROKER_UNREACHABLE:
                    raise
                except Exception as error:
                    # A fault of this message (a queue no longer declared):
                    # the others go on. The row stays unsent and is logged by
                    # every sweep until the cause is fixed; an event is never
                    # given up.
                    failed[row.pk] = _describe(error)
                    logger.exception(
                        "outbox message not published outbox_id=%s task=%s task_id=%s",
                        row.pk,
                        row.task_name,
                        row.task_id,
                    )
                else:
                    sent.append(row.pk)
    except BROKER_UNREACHABLE as error:
        return sent, failed, error
    return sent, failed, None


def _publish(row: OutboxMessage, producer: Producer) -> None:
    current_app.send_task(
        row.task_name,
        args=row.args,
        kwargs=row.kwargs,
        task_id=row.task_id,
        queue=row.queue,
        producer=producer,
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]
