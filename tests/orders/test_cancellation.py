"""Cancelling some or all units of an order: stock, total, number, payment.

The order.cancelled messages each cancellation publishes are checked on the
broker in test_events.py, and on real workers in test_pipeline.py.
"""

import uuid
from decimal import Decimal

import pytest
from django.core import mail

from orders import analytics, emails
from orders.models import Order, SalesRecord
from orders.payments import CARD_APPROVED, SimulatedGateway
from orders.services import (
    CancellationError,
    LineRequest,
    cancel_order,
    place_order,
)
from shop.models import Product
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def mug():
    return ProductFactory(code="22633", stock=10, price=Decimal("2.50"))


@pytest.fixture
def lamp():
    return ProductFactory(code="85123A", stock=10, price=Decimal("4.00"))


@pytest.fixture
def order(mug, lamp):
    """5 mugs and 2 lamps: £20.50."""
    return place_order(
        customer=CustomerFactory(),
        lines=[LineRequest(mug.code, 5), LineRequest(lamp.code, 2)],
        card_number=CARD_APPROVED,
        idempotency_key=uuid.uuid4().hex,
    ).order


def stock(product: Product) -> int:
    product.refresh_from_db()
    return product.stock


def cancelled_units(order: Order) -> dict[str, int]:
    return dict(order.lines.values_list("product__code", "cancelled_quantity"))


def test_partial_cancellation_returns_those_units_and_reduces_the_total(
    order, mug, lamp
):
    result = cancel_order(order, {mug.code: 3})

    order.refresh_from_db()
    assert (result.number, result.quantities) == (1, {mug.code: 3})
    assert (stock(mug), stock(lamp)) == (8, 8)
    assert order.total == Decimal("13.00")
    assert cancelled_units(order) == {mug.code: 3, lamp.code: 0}
    assert order.status == Order.Status.PLACED
    assert order.cancellation_count == 1
    assert order.cancelled_at is not None


def test_partial_cancellation_keeps_the_payment_authorized(order, mug):
    cancel_order(order, {mug.code: 3})

    assert order.payment_reference not in SimulatedGateway().voided()


@pytest.mark.parametrize(
    ("quantities", "error"),
    [
        ({"22633": 3}, "cannot cancel 3 of 22633 on order {pk}: 2 remain"),
        (
            {"22633": 1, "85123A": 3},
            "cannot cancel 3 of 85123A on order {pk}: 2 remain",
        ),
        ({"10002": 1}, "order {pk} has no line for 10002"),
        ({"22633": 0}, "units of 22633 to cancel must be a whole number of at least 1"),
        ({"22633": "1"}, "units of 22633 to cancel must be a whole number"),
        ({}, "the cancellation of order {pk} names no lines"),
    ],
    ids=["above-remaining", "one-line-above", "not-on-order", "zero", "text", "empty"],
)
def test_cancellation_that_does_not_fit_is_refused_and_changes_nothing(
    order, mug, lamp, quantities, error
):
    cancel_order(order, {mug.code: 3})

    with pytest.raises(CancellationError) as refused:
        cancel_order(order, quantities)

    order.refresh_from_db()
    assert str(refused.value).startswith(error.format(pk=order.pk))
    assert refused.value.status == 409
    assert (stock(mug), stock(lamp)) == (8, 8)
    assert cancelled_units(order) == {mug.code: 3, lamp.code: 0}
    assert (order.total, order.cancellation_count) == (Decimal("13.00"), 1)


def test_second_partial_cancellation_gets_number_two(order, mug, lamp):
    cancel_order(order, {mug.code: 1})

    second = cancel_order(order, {mug.code: 1, lamp.code: 1})

    order.refresh_from_db()
    assert second.number == order.cancellation_count == 2
    assert cancelled_units(order) == {mug.code: 2, lamp.code: 1}
    assert order.total == Decimal("11.50")


def test_cancelling_the_rest_after_a_partial_one_voids_the_payment_and_cancels(
    order, mug, lamp
):
    cancel_order(order, {mug.code: 3})

    rest = cancel_order(order)

    order.refresh_from_db()
    assert (rest.number, rest.quantities) == (2, {mug.code: 2, lamp.code: 2})
    assert order.status == Order.Status.CANCELLED
    assert order.total == Decimal("0.00")
    assert (stock(mug), stock(lamp)) == (10, 10)
    assert order.payment_reference in SimulatedGateway().voided()


def test_cancelling_the_last_units_by_quantity_also_cancels_the_order(order, mug, lamp):
    cancel_order(order, {lamp.code: 2})

    cancel_order(order, {mug.code: 5})

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert order.payment_reference in SimulatedGateway().voided()


def test_cancelling_an_order_with_nothing_left_returns_none_and_changes_nothing(
    order, mug
):
    cancel_order(order)

    again = cancel_order(order)

    order.refresh_from_db()
    assert again is None
    assert order.cancellation_count == 1
    assert stock(mug) == 10


def test_cancellation_email_lists_only_what_that_cancellation_took(order, mug, lamp):
    cancel_order(order, {mug.code: 3})
    cancel_order(order)

    emails.send_order_cancellation(order.pk, 1, [[mug.pk, 3]])
    emails.send_order_cancellation(order.pk, 2, [[mug.pk, 2], [lamp.pk, 2]])

    first, second = mail.outbox
    assert first.subject == f"Part of your order {order.pk} was cancelled"
    assert f"3 x {mug.name} (22633) at £2.50 = £7.50" in first.body
    assert "85123A" not in first.body
    assert second.subject == f"Your order {order.pk} was cancelled"
    assert f"2 x {mug.name}" in second.body and f"2 x {lamp.name}" in second.body
    assert "authorization on your card released" in second.body


def test_sales_record_counts_the_order_as_placed_after_a_partial_cancellation(
    order, mug
):
    cancel_order(order, {mug.code: 3})

    analytics.record_order(order.pk)

    record = SalesRecord.objects.get(order=order)
    assert (record.units, record.revenue) == (7, Decimal("20.50"))
