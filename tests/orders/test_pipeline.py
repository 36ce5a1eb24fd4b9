"""The order.completed fan-out, on a real broker and real worker processes."""

import pytest

from notifications.mailcatcher import read_mailbox
from notifications.models import EmailDelivery
from orders.emails import confirmation_key
from orders.models import SalesRecord
from orders.payments import CARD_APPROVED
from orders.services import LineRequest, place_order
from orders.tasks import send_order_confirmation_task
from shop.models import SearchEntry, StockMovement
from shop.search import search_products
from shop.services import change_product
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
