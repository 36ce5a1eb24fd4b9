"""Where order events go, checked on the broker itself (no worker consumes).

The messages pass through the outbox (shop/outbox.py); its own tests, with
the broker stopped, are in tests/shop/test_outbox.py.
"""

import pytest
from django.db import transaction

from orders.emails import cancellation_key
from orders.payments import CARD_APPROVED, CARD_DECLINED
from orders.services import (
    CancellationError,
    LineRequest,
    PaymentDeclined,
    cancel_order,
    place_order,
)
from shop.models import OutboxMessage
from shop.queues import QUEUES
from tests.factories import CustomerFactory, ProductFactory
from tests.support import queued_messages, queued_task_args, queued_task_names


def _checkout(customer, *products, card=CARD_APPROVED, key="key-1"):
    return place_order(
        customer=customer,
        lines=[LineRequest(product.code, 2) for product in products],
        card_number=card,
        idempotency_key=key,
    )


def _queued(broker) -> dict[str, list[str]]:
    return {
        queue: names for queue in QUEUES if (names := queued_task_names(broker, queue))
    }


@pytest.mark.django_db
def test_order_completed_sends_one_message_to_each_consumer_queue(
    broker, django_capture_on_commit_callbacks
):
    customer, product = CustomerFactory(), ProductFactory()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _checkout(customer, product)

    assert len(callbacks) == 1
    assert _queued(broker) == {
        "emails": ["orders.tasks.send_order_confirmation_task"],
        "inventory": ["shop.tasks.record_stock_movements_task"],
        "analytics": ["orders.tasks.record_order_analytics_task"],
        "search": ["shop.tasks.update_search_index_task"],
    }
    sent = {row.queue: row for row in OutboxMessage.objects.all()}
    for queue, row in sent.items():
        [message] = queued_messages(broker, queue)
        assert message["headers"]["id"] == row.task_id
        assert row.sent_at is not None


@pytest.mark.django_db
def test_nothing_is_sent_before_the_order_commits(
    broker, django_capture_on_commit_callbacks
):
    customer, product = CustomerFactory(), ProductFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _checkout(customer, product)

    assert len(callbacks) == 1
    assert _queued(broker) == {}
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 4


@pytest.mark.django_db(transaction=True)
def test_rolled_back_checkout_sends_nothing(broker):
    customer, product = CustomerFactory(), ProductFactory(stock=5)

    with pytest.raises(RuntimeError), transaction.atomic():
        _checkout(customer, product)
        raise RuntimeError("the surrounding transaction fails after checkout")

    assert _queued(broker) == {}
    assert not OutboxMessage.objects.exists()
    product.refresh_from_db()
    assert product.stock == 5
    assert customer.orders.count() == 0


@pytest.mark.django_db(transaction=True)
def test_declined_checkout_sends_nothing(broker):
    customer, product = CustomerFactory(), ProductFactory(stock=5)

    with pytest.raises(PaymentDeclined):
        _checkout(customer, product, card=CARD_DECLINED)

    assert _queued(broker) == {}
    assert not OutboxMessage.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_cancellation_sends_email_stock_and_index_messages(broker):
    customer, product = CustomerFactory(), ProductFactory(stock=5)
    order = _checkout(customer, product).order
    broker.flushdb()

    cancel_order(order)

    assert _queued(broker) == {
        "emails": ["orders.tasks.send_order_cancellation_task"],
        "inventory": ["shop.tasks.record_stock_movements_task"],
        "search": ["shop.tasks.update_search_index_task"],
    }
    product.refresh_from_db()
    assert product.stock == 5


@pytest.mark.django_db(transaction=True)
def test_partial_cancellation_sends_its_number_and_units_to_each_consumer(broker):
    customer, kept, returned = CustomerFactory(), ProductFactory(), ProductFactory()
    order = _checkout(customer, kept, returned).order
    broker.flushdb()

    cancel_order(order, {returned.code: 1})

    assert _queued(broker) == {
        "emails": ["orders.tasks.send_order_cancellation_task"],
        "inventory": ["shop.tasks.record_stock_movements_task"],
        "search": ["shop.tasks.update_search_index_task"],
    }
    assert queued_task_args(broker, "emails") == [[order.pk, 1, [[returned.pk, 1]]]]
    assert queued_task_args(broker, "inventory") == [
        [f"order:{order.pk}:cancel:1", [[returned.pk, 1]]]
    ]
    assert queued_task_args(broker, "search") == [[[returned.pk]]]


@pytest.mark.django_db(transaction=True)
def test_second_partial_cancellation_gets_its_own_reference_and_email_key(broker):
    customer, product, other = CustomerFactory(), ProductFactory(), ProductFactory()
    order = _checkout(customer, product, other).order
    broker.flushdb()
    cancel_order(order, {product.code: 1})

    cancel_order(order, {product.code: 1})

    references = [args[0] for args in queued_task_args(broker, "inventory")]
    keys = [
        cancellation_key(order_id, number)
        for order_id, number, _ in queued_task_args(broker, "emails")
    ]
    assert references == [f"order:{order.pk}:cancel:{n}" for n in (1, 2)]
    assert keys == [f"order-cancellation:{order.pk}:{n}" for n in (1, 2)]


@pytest.mark.django_db(transaction=True)
def test_refused_cancellation_sends_nothing(broker):
    customer, product = CustomerFactory(), ProductFactory()
    order = _checkout(customer, product).order
    broker.flushdb()

    with pytest.raises(CancellationError):
        cancel_order(order, {product.code: 3})

    assert _queued(broker) == {}
