"""ORDERS_SIDE_EFFECTS = "inline": the benchmark's baseline does the same work."""

import pytest

from notifications.mailcatcher import read_mailbox
from orders.models import SalesRecord
from orders.payments import CARD_APPROVED
from orders.services import LineRequest, place_order
from shop.models import SearchEntry, StockMovement
from shop.queues import QUEUES
from tests.factories import CustomerFactory, ProductFactory
from tests.support import queued_task_names


@pytest.mark.django_db(transaction=True)
def test_inline_mode_does_every_side_effect_before_checkout_returns(
    settings, broker, mail_catcher
):
    settings.ORDERS_SIDE_EFFECTS = "inline"
    product = ProductFactory(stock=3)

    order = place_order(
        customer=CustomerFactory(),
        lines=[LineRequest(product.code, 1)],
        card_number=CARD_APPROVED,
        idempotency_key="inline",
    ).order

    assert SalesRecord.objects.filter(order=order).exists()
    assert StockMovement.objects.filter(reference=f"order:{order.pk}").exists()
    assert SearchEntry.objects.get(product=product).in_stock is True
    assert [
        m for m in read_mailbox(mail_catcher) if f"order {order.pk} " in m["Subject"]
    ]
    assert all(queued_task_names(broker, queue) == [] for queue in QUEUES)
