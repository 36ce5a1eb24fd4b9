"""Every checkout error, through the API and through the checkout page.

Both channels call the same place_order; each error must reach the person
with its code and a sentence they can act on, and leave nothing behind: no
order, no line, no stock taken, no authorization.
"""

import uuid
from decimal import Decimal

import pytest
from django.urls import reverse

from orders.models import Order, OrderLine
from orders.payments import (
    CARD_APPROVED,
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    SimulatedGateway,
)
from shop.cart import SESSION_KEY
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

CODE = "85123A"
STOCK = 5


@pytest.fixture
def product():
    return ProductFactory(code=CODE, stock=STOCK, price=Decimal("2.55"))


@pytest.fixture
def key():
    """A fresh idempotency key: the gateway's Redis outlives each test's rollback."""
    return uuid.uuid4().hex


@pytest.fixture
def customer(client):
    customer = CustomerFactory()
    client.force_login(customer.user)
    return customer


def checkout_by_api(client, quantities, card_number, key):
    """Place an order through the API; return (status, error code, detail)."""
    lines = [{"product": code, "quantity": n} for code, n in quantities.items()]
    response = client.post(
        "/api/orders/",
        {"lines": lines, "card_number": card_number},
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )
    body = response.json()
    return response.status_code, body.get("error"), body.get("detail")


def checkout_by_page(client, quantities, card_number, key):
    """Fill the cart and submit the checkout page; return (status, code, page)."""
    session = client.session
    session[SESSION_KEY] = quantities
    session.save()
    response = client.post(
        reverse("orders:checkout"),
        {"card_number": card_number, "idempotency_key": key},
    )
    page = response.content.decode()
    code = response.context["error"].code if response.context else None
    return response.status_code, code, page


CHANNELS = [checkout_by_api, checkout_by_page]

ERRORS = [
    # (quantities, card, status, code, words the detail must hold)
    ({"NO-SUCH": 1}, CARD_APPROVED, 400, "unknown_product", "NO-SUCH"),
    ({CODE: 0}, CARD_APPROVED, 400, "invalid_order", "at least 1"),
    ({CODE: -2}, CARD_APPROVED, 400, "invalid_order", "at least 1"),
    ({CODE: 10**9}, CARD_APPROVED, 400, "invalid_order", "above the limit"),
    ({CODE: STOCK + 1}, CARD_APPROVED, 409, "out_of_stock", f"{STOCK} left"),
    ({CODE: 1}, "1234", 400, "invalid_card", "12 to 19 digits"),
    ({CODE: 1}, "4242 4242 4242 4241", 400, "invalid_card", "mistyped"),
    ({CODE: 1}, CARD_DECLINED, 402, "payment_declined", "was declined"),
    ({CODE: 1}, CARD_INSUFFICIENT_FUNDS, 402, "payment_declined", "insufficient"),
]


@pytest.mark.parametrize("checkout", CHANNELS)
@pytest.mark.parametrize(("quantities", "card", "status", "code", "words"), ERRORS)
def test_checkout_error_is_explained_and_changes_nothing(
    client, customer, product, key, checkout, quantities, card, status, code, words
):
    gateway = SimulatedGateway()
    authorizations = gateway.authorization_count()

    got_status, got_code, detail = checkout(client, quantities, card, key)

    assert (got_status, got_code) == (status, code)
    assert words in detail
    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()
    product.refresh_from_db()
    assert product.stock == STOCK
    assert gateway.authorization_count() == authorizations


@pytest.mark.parametrize(
    "quantity",
    ["2", 1.5, True, [1]],
    ids=["string", "float", "bool", "list"],
)
def test_api_quantity_that_is_not_a_whole_number_is_refused(
    client, customer, product, key, quantity
):
    status, code, detail = checkout_by_api(client, {CODE: quantity}, CARD_APPROVED, key)

    assert (status, code) == (400, "invalid_order")
    assert detail == f"Quantity of {CODE} is not a whole number."
    assert not Order.objects.exists()


def test_api_error_detail_is_a_sentence(client, customer, product, key):
    _, _, detail = checkout_by_api(client, {CODE: 1}, CARD_DECLINED, key)

    assert detail == "The card was declined. Please use another card."


def test_checkout_page_shows_the_error_without_echoing_the_card(
    client, customer, product, key
):
    status, _, page = checkout_by_page(client, {CODE: 1}, CARD_DECLINED, key)

    assert status == 402
    assert 'data-error-code="payment_declined"' in page
    assert "Payment declined." in page
    assert "The card was declined. Please use another card." in page
    assert CARD_DECLINED not in page


def test_checkout_page_after_a_decline_keeps_its_key_and_a_new_card_pays(
    client, customer, product, key
):
    gateway = SimulatedGateway()
    authorizations = gateway.authorization_count()
    _, _, page = checkout_by_page(client, {CODE: 2}, CARD_DECLINED, key=key)
    assert f'value="{key}"' in page

    status, _, _ = checkout_by_page(client, {CODE: 2}, CARD_APPROVED, key=key)

    assert status == 302
    order = Order.objects.get()
    assert order.idempotency_key == key
    assert gateway.authorization_count() == authorizations + 1


def test_checkout_page_resubmitted_after_success_shows_the_same_order(
    client, customer, product, key
):
    gateway = SimulatedGateway()
    authorizations = gateway.authorization_count()
    checkout_by_page(client, {CODE: 2}, CARD_APPROVED, key=key)

    # The first submission emptied the cart; the key still finds its order.
    second = client.post(
        reverse("orders:checkout"),
        {"card_number": CARD_APPROVED, "idempotency_key": key},
    )

    order = Order.objects.get()
    assert second.status_code == 302
    assert second.url == reverse("orders:detail", args=[order.pk])
    assert gateway.authorization_count() == authorizations + 1
    product.refresh_from_db()
    assert product.stock == STOCK - 2


def test_checkout_page_submitted_twice_with_the_cart_still_full_charges_once(
    client, customer, product, key
):
    gateway = SimulatedGateway()
    authorizations = gateway.authorization_count()

    first, _, _ = checkout_by_page(client, {CODE: 2}, CARD_APPROVED, key=key)
    second, _, _ = checkout_by_page(client, {CODE: 2}, CARD_APPROVED, key=key)

    assert (first, second) == (302, 302)
    assert Order.objects.count() == 1
    assert gateway.authorization_count() == authorizations + 1


def test_api_order_sent_twice_with_one_key_is_placed_and_charged_once(
    client, customer, product, key
):
    gateway = SimulatedGateway()
    authorizations = gateway.authorization_count()
    body = {"lines": [{"product": CODE, "quantity": 2}], "card_number": CARD_APPROVED}

    first = client.post(
        "/api/orders/",
        body,
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )
    second = client.post(
        "/api/orders/",
        body,
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert Order.objects.count() == 1
    assert gateway.authorization_count() == authorizations + 1
    product.refresh_from_db()
    assert product.stock == STOCK - 2


def test_unreachable_payment_provider_answers_503_and_changes_nothing(
    client, customer, product, key, settings
):
    settings.ORDERS_GATEWAY_REDIS_URL = "redis://127.0.0.1:1/0"
    stock = product.stock

    status, code, detail = checkout_by_api(client, {CODE: 1}, CARD_APPROVED, key)

    assert (status, code) == (503, "payment_unavailable")
    assert "nothing was charged" in detail
    assert not Order.objects.exists()
    product.refresh_from_db()
    assert product.stock == stock
