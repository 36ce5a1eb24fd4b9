"""The order.completed fan-out, on a real broker and real worker processes."""

import pytest

from notifications.mailcatcher import read_mailbox
from orders.models import SalesRecord
from orders.payments import CARD_APPROVED
from orders.services import LineRequest, place_order
from shop.models import SearchEntry, StockMovement
from tests.factories import CustomerFactory, ProductFactory
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_order_completed_reaches_every_consumer(workers, mail_catcher):
    customer = CustomerFactory()
    product = ProductFactory(stock=10)

    result = place_order(
        customer=customer,
        lines=[LineRequest(product.code, 3)],
        card_number=CARD_APPROVED,
        idempotency_key="k1",
    )

    order = result.order
    wait_for(lambda: SalesRecord.objects.filter(order=order).exists())
    wait_for(lambda: StockMovement.objects.filter(reference=f"order:{order.pk}").exists())
    wait_for(lambda: SearchEntry.objects.filter(product=product).exists())
    mail = wait_for(
        lambda: [m for m in read_mailbox(mail_catcher) if str(order.pk) in m["Subject"]]
    )
    assert len(mail) == 1
    assert SearchEntry.objects.get(product=product).in_stock is True
    assert StockMovement.objects.get(reference=f"order:{order.pk}").quantity == -3
