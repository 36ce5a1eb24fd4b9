"""The transactional outbox: no event lost to a broker outage, none done twice.

This module runs on a Redis of its own, which the tests stop and start: the
test process's Celery app and the worker processes started here publish to
and consume from it. The simulated gateway and the task state stay on the
run's Redis, so checkout itself keeps working while this broker is down.
"""

import logging
import re
import socket
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from unittest import mock

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from notifications.mailcatcher import read_mailbox
from notifications.models import EmailDelivery
from orders.emails import confirmation_key
from orders.models import SalesRecord
from orders.payments import CARD_APPROVED
from orders.services import LineRequest, place_order
from shop import embedded_redis, outbox
from shop.celery import app
from shop.models import OutboxMessage, SearchEntry, StockMovement
from tests.factories import CustomerFactory, ProductFactory
from tests.support import Worker, queued_messages, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

CONSUMER_QUEUES = ["emails", "inventory", "analytics", "search"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _use_broker(url: str) -> None:
    """Point this process's Celery app at another broker.

    The app caches a connection pool and a producer pool (app.pool,
    app.amqp.producer_pool), and kombu caches both per broker URL; all are
    dropped so the next publish connects to ``url``, as Celery's own
    Celery._after_fork drops the app's two.
    """
    app.conf.broker_url = url
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


class Broker:
    """A Redis that the tests can stop and start again on the same port.

    Append-only, in a folder of the run, as the production broker is: what
    it held before a stop is there after the start.
    """

    def __init__(self) -> None:
        self.port = _free_port()
        self.directory = settings.VAR_DIR / "outbox-broker"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.client = redis.Redis(port=self.port)
        self.process = None

    def start(self) -> None:
        self.process = embedded_redis.start(self.port, self.directory)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="module", autouse=True)
def private_broker(redis_server):
    broker = Broker()
    broker.start()
    previous = app.conf.broker_url
    _use_broker(broker.url)
    yield broker
    _use_broker(previous)
    if broker.process.poll() is None:
        broker.stop()


@pytest.fixture(autouse=True)
def broker_running(private_broker):
    """Start each test with the broker up, whatever the one before did."""
    if private_broker.process.poll() is not None:
        private_broker.start()


@pytest.fixture
def queues(private_broker):
    """The private broker, with every queue emptied before the test."""
    private_broker.client.flushdb()
    return private_broker.client


@pytest.fixture(scope="module")
def consumers(django_db_setup, mail_catcher, private_broker):
    """A worker process per consumer queue, on the private broker."""
    pool = {
        queue: Worker(
            [queue], name=f"outbox-{queue}", CELERY_BROKER_URL=private_broker.url
        )
        for queue in CONSUMER_QUEUES
    }
    for worker in pool.values():
        worker.start()
    for worker in pool.values():
        worker.wait_ready()
    yield pool
    # Warm shutdowns in parallel: each takes a second or two.
    for worker in pool.values():
        worker.process.terminate()
    for worker in pool.values():
        worker.stop()


def _write(count: int) -> list[OutboxMessage]:
    """Write unsent rows, no relay, for a test task no worker here consumes."""
    return OutboxMessage.objects.bulk_create(
        OutboxMessage(
            task_name="tests.tasks.mark_task",
            args=["outbox", n],
            queue="low",
            task_id=str(uuid.uuid4()),
        )
        for n in range(count)
    )


def _age(rows: list[OutboxMessage], seconds: float) -> None:
    OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


_TASK_EVENT = re.compile(r"\[([0-9a-f-]{36})\] (received|succeeded)")


def _task_events(consumers: dict[str, Worker]) -> Counter[tuple[str, str]]:
    """Count (task id, "received" or "succeeded") in the consumers' logs."""
    return Counter(
        match.groups()
        for worker in consumers.values()
        for match in _TASK_EVENT.finditer(worker.log())
    )


def _confirmations(mailbox, order_ids) -> dict[int, int]:
    """Count the confirmation emails in the mailbox per order."""
    subjects = [message["Subject"] for message in read_mailbox(mailbox)]
    return {pk: subjects.count(f"Your order {pk} is confirmed") for pk in order_ids}


def test_send_on_commit_publishes_each_row_with_its_task_id_and_queue(queues):
    product = ProductFactory()

    order = place_order(
        customer=CustomerFactory(),
        lines=[LineRequest(product.code, 1)],
        card_number=CARD_APPROVED,
        idempotency_key="published",
    ).order

    rows = list(OutboxMessage.objects.all())
    assert [(row.task_name, row.queue) for row in rows] == [
        ("orders.tasks.send_order_confirmation_task", "emails"),
        ("shop.tasks.record_stock_movements_task", "inventory"),
        ("orders.tasks.record_order_analytics_task", "analytics"),
        ("shop.tasks.update_search_index_task", "search"),
    ]
    assert rows[0].args == [order.pk]
    assert all(row.sent_at is not None and row.attempts == 0 for row in rows)
    for row in rows:
        [message] = queued_messages(queues, row.queue)
        assert message["headers"]["id"] == row.task_id


def test_rows_of_a_rolled_back_transaction_never_exist_and_nothing_is_sent(queues):
    product = ProductFactory(stock=5)

    with pytest.raises(RuntimeError), transaction.atomic():
        place_order(
            customer=CustomerFactory(),
            lines=[LineRequest(product.code, 1)],
            card_number=CARD_APPROVED,
            idempotency_key="rolled-back",
        )
        assert OutboxMessage.objects.count() == 4
        raise RuntimeError("the surrounding transaction fails after checkout")

    assert not OutboxMessage.objects.exists()
    assert outbox.relay_pending(timezone.now() + timedelta(seconds=1)).claimed == 0
    assert queues.keys("*") == []


def test_sweep_leaves_fresh_rows_to_their_request_and_purges_old_sent_ones(
    queues, settings, caplog
):
    settings.SHOP_OUTBOX_SWEEP_MIN_AGE_SECONDS = 5
    settings.SHOP_OUTBOX_RETENTION_HOURS = 24
    late, fresh, old_sent, recent_sent = _write(4)
    _age([late], 10)
    OutboxMessage.objects.filter(pk=old_sent.pk).update(
        sent_at=timezone.now() - timedelta(hours=25)
    )
    OutboxMessage.objects.filter(pk=recent_sent.pk).update(
        sent_at=timezone.now() - timedelta(hours=1)
    )

    with caplog.at_level(logging.INFO, logger="shop.outbox"):
        relayed = outbox.sweep()

    assert (relayed.sent, relayed.unsent) == (1, 0)
    assert [m["headers"]["id"] for m in queued_messages(queues, "low")] == [
        late.task_id
    ]
    remaining = {row.pk: row.sent_at for row in OutboxMessage.objects.all()}
    assert set(remaining) == {late.pk, fresh.pk, recent_sent.pk}
    assert remaining[late.pk] is not None
    assert remaining[fresh.pk] is None
    [line] = [r.getMessage() for r in caplog.records if r.name == "shop.outbox"]
    assert line.startswith("outbox sweep sent=1 unsent=0 purged=1 duration_ms=")


def test_a_row_that_fails_on_its_own_stays_unsent_and_the_others_go(queues, caplog):
    first, broken, last = _write(3)
    # A queue that was declared when the row was written and is no longer.
    OutboxMessage.objects.filter(pk=broken.pk).update(queue="retired")

    with caplog.at_level(logging.ERROR, logger="shop.outbox"):
        relayed = outbox.relay([first.pk, broken.pk, last.pk])

    assert (relayed.sent, relayed.unsent) == (2, 1)
    broken.refresh_from_db()
    assert broken.sent_at is None
    assert broken.attempts == 1
    assert broken.last_error.startswith("QueueNotFound: ")
    assert [m["headers"]["id"] for m in queued_messages(queues, "low")] == [
        first.task_id,
        last.task_id,
    ]
    [record] = [r for r in caplog.records if r.name == "shop.outbox"]
    assert record.getMessage() == (
        f"outbox message not published outbox_id={broken.pk} "
        f"task=tests.tasks.mark_task task_id={broken.task_id}"
    )
    assert record.exc_info is not None


def test_two_relays_at_once_publish_each_row_once(queues):
    rows = _write(40)
    real_publish = outbox._publish

    def slow_publish(row, producer):
        # Long enough that the two relays' batches overlap.
        time.sleep(0.01)
        real_publish(row, producer)

    def relay(results: list) -> None:
        try:
            results.append(outbox.relay_pending(timezone.now() + timedelta(seconds=1)))
        finally:
            connections.close_all()

    results: list[outbox.Relayed] = []
    with (
        mock.patch.object(outbox, "_publish", slow_publish),
        mock.patch.object(outbox, "BATCH_SIZE", 5),
    ):
        threads = [threading.Thread(target=relay, args=(results,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    published = [m["headers"]["id"] for m in queued_messages(queues, "low")]
    assert sorted(published) == sorted(row.task_id for row in rows)
    assert sum(result.sent for result in results) == 40
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


def test_sweep_runs_every_five_seconds_on_the_default_queue():
    entry = settings.CELERY_BEAT_SCHEDULE["relay-outbox"]

    assert entry["task"] == "shop.tasks.relay_outbox_task"
    assert entry["schedule"] == 5.0
    assert entry["options"]["expires"] < entry["schedule"]
    assert settings.CELERY_TASK_ROUTES[entry["task"]]["queue"] == "default"


def test_broker_stopped_during_50_checkouts_loses_no_event_and_doubles_no_effect(
    private_broker, consumers, mail_catcher, settings, caplog
):
    """The issue's test: every checkout succeeds, every effect happens once."""
    settings.SHOP_OUTBOX_SWEEP_MIN_AGE_SECONDS = 0
    customers = CustomerFactory.create_batch(5)
    products = ProductFactory.create_batch(4, stock=1000)
    private_broker.client.flushdb()
    private_broker.stop()

    orders, durations = [], []
    with caplog.at_level(logging.WARNING, logger="shop.outbox"):
        for n in range(50):
            started = time.monotonic()
            result = place_order(
                customer=customers[n % 5],
                lines=[
                    LineRequest(products[n % 4].code, 1),
                    LineRequest(products[(n + 1) % 4].code, 2),
                ],
                card_number=CARD_APPROVED,
                idempotency_key=f"outage-{n}",
            )
            durations.append(time.monotonic() - started)
            orders.append(result.order)

    # Each checkout waits for the publish retry policy once (about 0.3 s).
    assert max(durations) < 2
    rows = list(OutboxMessage.objects.all())
    assert len(rows) == 200
    assert {(row.sent_at, row.attempts) for row in rows} == {(None, 1)}
    assert "Connection refused" in rows[0].last_error
    warnings = [r.getMessage() for r in caplog.records if r.name == "shop.outbox"]
    assert (
        warnings
        == [
            "outbox relay stopped, broker unreachable sent=0 unsent=4 error=Error 111 "
            f"connecting to 127.0.0.1:{private_broker.port}. Connection refused."
        ]
        * 50
    )

    private_broker.start()
    for worker in consumers.values():
        # Back from their reconnection backoff.
        worker.wait_ready()
    relayed = outbox.sweep()

    assert (relayed.sent, relayed.unsent) == (200, 0)
    order_ids = [order.pk for order in orders]
    wait_for(
        lambda: all(_task_events(consumers)[row.task_id, "succeeded"] for row in rows),
        timeout=60,
    )
    events = _task_events(consumers)
    assert {events[row.task_id, "received"] for row in rows} == {1}
    assert _confirmations(mail_catcher, order_ids) == {pk: 1 for pk in order_ids}
    assert (
        EmailDelivery.objects.filter(
            key__in=[confirmation_key(pk) for pk in order_ids], sent_at__isnull=False
        ).count()
        == 50
    )
    assert SalesRecord.objects.filter(order__in=order_ids).count() == 50
    assert sorted(
        StockMovement.objects.values_list("reference", "product_id", "quantity")
    ) == sorted(
        (f"order:{order.pk}", line.product_id, -line.quantity)
        for order in orders
        for line in order.lines.all()
    )
    assert sorted(SearchEntry.objects.values_list("product_id", flat=True)) == sorted(
        product.pk for product in products
    )
    assert consumers["search"].log().count("search index updated") == 50


def test_a_message_relayed_twice_has_its_effect_once(
    private_broker, consumers, mail_catcher
):
    product = ProductFactory(stock=10)
    order = place_order(
        customer=CustomerFactory(),
        lines=[LineRequest(product.code, 3)],
        card_number=CARD_APPROVED,
        idempotency_key="twice",
    ).order
    rows = list(OutboxMessage.objects.all())
    wait_for(
        lambda: all(_task_events(consumers)[row.task_id, "succeeded"] for row in rows)
    )

    # As if the relay had died after publishing, before marking the rows sent.
    OutboxMessage.objects.update(sent_at=None)
    relayed = outbox.relay_pending(timezone.now())

    assert relayed.sent == 4
    wait_for(
        lambda: all(
            _task_events(consumers)[row.task_id, "succeeded"] == 2 for row in rows
        )
    )
    events = _task_events(consumers)
    assert {events[row.task_id, "received"] for row in rows} == {2}
    assert f"email already sent key={confirmation_key(order.pk)}" in (
        consumers["emails"].log()
    )
    assert f"reference=order:{order.pk} new=0" in consumers["inventory"].log()
    assert _confirmations(mail_catcher, [order.pk]) == {order.pk: 1}
    assert EmailDelivery.objects.filter(key=confirmation_key(order.pk)).count() == 1
    assert SalesRecord.objects.filter(order=order).count() == 1
    assert list(
        StockMovement.objects.filter(reference=f"order:{order.pk}").values_list(
            "product_id", "quantity"
        )
    ) == [(product.pk, -3)]
