"""The order events' fan-out, on a real broker and real worker processes."""

import pytest

from notifications.mailcatcher import read_mailbox
from notifications.models import EmailDelivery
from orders.emails import cancellation_key, confirmation_key
from orders.models import SalesRecord
from orders.payments import CARD_APPROVED
from orders.services import LineRequest, cancel_order, place_order
from orders.tasks import send_order_cancellation_task, send_order_confirmation_task
from shop.models import SearchEntry, StockMovement
from shop.search import search_products
from shop.services import change_product
from shop.tasks import record_stock_movements_task
from tests.factories import CustomerFactory, ProductFactory
from tests.support import queued_task_names, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _checkout(customer, product, quantity=3, key="k1"):
    return place_order(
        customer=customer,
        lines=[LineRequest(product.code, quantity)],
        card_number=CARD_APPROVED,
        idempotency_key=key,
    ).order


def _mail_about(mailbox, order):
    return [m for m in read_mailbox(mailbox) if f"order {order.pk} " in m["Subject"]]


def test_order_completed_reaches_every_consumer(workers, mail_catcher):
    customer = CustomerFactory()
    product = ProductFactory(stock=10)

    order = _checkout(customer, product)

    wait_for(lambda: SalesRecord.objects.filter(order=order).exists())
    wait_for(
        lambda: StockMovement.objects.filter(reference=f"order:{order.pk}").exists()
    )
    wait_for(lambda: SearchEntry.objects.filter(product=product).exists())
    wait_for(lambda: _mail_about(mail_catcher, order))
    assert StockMovement.objects.get(reference=f"order:{order.pk}").quantity == -3
    assert SalesRecord.objects.get(order=order).units == 3
    [mail] = _mail_about(mail_catcher, order)
    assert mail["To"] == customer.user.email
    assert product.name in mail.get_body(("plain",)).get_content()


def test_a_stopped_consumer_delays_none_of_the_others(workers, broker, mail_catcher):
    customer = CustomerFactory()
    product = ProductFactory(stock=10)
    workers["inventory"].stop()

    order = _checkout(customer, product)

    wait_for(lambda: SalesRecord.objects.filter(order=order).exists())
    wait_for(lambda: SearchEntry.objects.filter(product=product).exists())
    wait_for(lambda: _mail_about(mail_catcher, order))
    assert not StockMovement.objects.filter(reference=f"order:{order.pk}").exists()
    assert queued_task_names(broker, "inventory") == [
        "shop.tasks.record_stock_movements_task"
    ]

    workers["inventory"].start().wait_ready()

    wait_for(
        lambda: StockMovement.objects.filter(reference=f"order:{order.pk}").exists()
    )
    assert queued_task_names(broker, "inventory") == []


def test_confirmation_is_sent_once_when_its_message_arrives_again(
    workers, mail_catcher
):
    customer = CustomerFactory()
    order = _checkout(customer, ProductFactory())
    wait_for(lambda: _mail_about(mail_catcher, order))

    # The same message delivered again, twice at once, to the two processes
    # of the emails worker: what a redelivery after a lost ack looks like.
    for _ in range(3):
        send_order_confirmation_task.delay(order.pk)

    wait_for(lambda: "email already sent" in workers["emails"].log(), timeout=20)
    wait_for(
        lambda: workers["emails"].log().count(f"key={confirmation_key(order.pk)}") >= 4
    )
    assert len(_mail_about(mail_catcher, order)) == 1
    assert EmailDelivery.objects.filter(key=confirmation_key(order.pk)).count() == 1


def test_partial_cancellation_is_mailed_and_booked_once(workers, mail_catcher):
    customer = CustomerFactory()
    kept, returned = ProductFactory(stock=10), ProductFactory(stock=10)
    order = place_order(
        customer=customer,
        lines=[LineRequest(kept.code, 3), LineRequest(returned.code, 3)],
        card_number=CARD_APPROVED,
        idempotency_key="partial",
    ).order
    reference, key = f"order:{order.pk}:cancel:1", cancellation_key(order.pk, 1)

    cancel_order(order, {returned.code: 2})

    def mailed():
        return [
            m
            for m in read_mailbox(mail_catcher)
            if m["Subject"] == f"Part of your order {order.pk} was cancelled"
        ]

    wait_for(mailed)
    wait_for(lambda: StockMovement.objects.filter(reference=reference).exists())
    emails_seen = len(workers["emails"].log())
    inventory_seen = len(workers["inventory"].log())
    # The same two messages delivered again, as after a lost ack.
    send_order_cancellation_task.delay(order.pk, 1, [[returned.pk, 2]])
    record_stock_movements_task.delay(reference, [[returned.pk, 2]])
    wait_for(
        lambda: f"email already sent key={key}" in workers["emails"].log()[emails_seen:]
    )
    wait_for(
        lambda: f"reference={reference} new=0"
        in workers["inventory"].log()[inventory_seen:]
    )
    [mail] = mailed()
    body = mail.get_body(("plain",)).get_content()
    assert f"2 x {returned.name} ({returned.code})" in body
    assert kept.code not in body
    assert EmailDelivery.objects.filter(key=key).count() == 1
    assert list(
        StockMovement.objects.filter(reference=reference).values_list(
            "product_id", "quantity", "stock_at_booking"
        )
    ) == [(returned.pk, 2, 9)]


def test_search_shows_a_change_once_its_index_task_ran(workers):
    product = ProductFactory(name="Plain candle", stock=4)
    change_product(product, name="Plain candle")
    wait_for(lambda: search_products("plain candle"))
    workers["search"].stop()

    change_product(product, name="Lavender lantern")

    assert search_products("lavender") == []
    assert [entry.name for entry in search_products("candle")] == ["Plain candle"]
    workers["search"].start().wait_ready()
    [entry] = wait_for(lambda: search_products("lavender"))
    assert entry.name == "Lavender lantern"
    assert search_products("candle") == []
