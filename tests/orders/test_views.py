"""The checkout page and the order pages: what they show, and to whom."""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import EmailDelivery
from orders.emails import cancellation_key, confirmation_key
from orders.models import Order, SalesRecord
from orders.payments import CARD_APPROVED, SimulatedGateway
from orders.services import cancel_order
from shop.cart import SESSION_KEY
from shop.models import SearchEntry, StockMovement
from shop.search import index_products
from tests.factories import CustomerFactory, ProductFactory
from tests.support import queued_messages

pytestmark = pytest.mark.django_db

CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


@pytest.fixture
def product():
    return ProductFactory(code="84029E", name="Red woolly hottie white heart", stock=8)


def fill_cart(client, quantities):
    session = client.session
    session[SESSION_KEY] = quantities
    session.save()


def without_csrf(content: bytes) -> bytes:
    # The sign-out form's token is masked afresh on every render.
    return CSRF_TOKEN.sub(b"", content)


def test_checkout_page_shows_the_cart_test_cards_and_a_fresh_key(client, product):
    client.force_login(CustomerFactory().user)
    fill_cart(client, {product.code: 3})

    first = client.get(reverse("orders:checkout"))
    second = client.get(reverse("orders:checkout"))

    assert first.status_code == 200
    assert "Red woolly hottie white heart" in first.content.decode()
    assert "£7.50" in first.content.decode()
    assert "4242 4242 4242 4242" in first.content.decode()
    assert "4000 0000 0000 0002" in first.content.decode()
    assert "The payment gateway is simulated" in first.content.decode()
    first_key = first.context["form"].initial["idempotency_key"]
    assert f'name="idempotency_key" value="{first_key}"' in first.content.decode()
    assert first_key != second.context["form"].initial["idempotency_key"]


def test_checkout_with_an_empty_cart_sends_the_visitor_to_the_cart(client):
    client.force_login(CustomerFactory().user)

    response = client.get(reverse("orders:checkout"))

    assert response.status_code == 302
    assert response.url == reverse("shop:cart")


def test_checkout_asks_an_anonymous_visitor_to_sign_in(client, product):
    fill_cart(client, {product.code: 1})

    response = client.get(reverse("orders:checkout"))

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={reverse('orders:checkout')}"


def test_successful_checkout_empties_the_cart_and_shows_the_order(client, product):
    customer = CustomerFactory()
    client.force_login(customer.user)
    fill_cart(client, {product.code: 2})

    response = client.post(
        reverse("orders:checkout"),
        {"card_number": CARD_APPROVED, "idempotency_key": uuid.uuid4().hex},
        follow=True,
    )

    order = Order.objects.get(customer=customer)
    assert response.redirect_chain == [(reverse("orders:detail", args=[order.pk]), 302)]
    assert SESSION_KEY not in client.session
    assert "Thank you: your order is placed." in response.content.decode()


def test_checkout_with_a_blank_card_is_refused_by_the_form(client, product):
    client.force_login(CustomerFactory().user)
    fill_cart(client, {product.code: 1})

    response = client.post(
        reverse("orders:checkout"), {"card_number": "", "idempotency_key": "k"}
    )

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not Order.objects.exists()


def test_order_list_shows_only_own_orders(client, order):
    CustomerFactory()
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:list"))

    assert response.status_code == 200
    assert [shown.pk for shown in response.context["page"]] == [order.pk]
    assert f"Order {order.pk}" in response.content.decode()
    assert "£5.00" in response.content.decode()


def test_owner_sees_order_lines_total_payment_and_pending_work(client, order):
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:detail", args=[order.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Red woolly hottie white heart" in page
    assert "£5.00" in page
    assert order.payment_reference in page
    assert "Placed" in page
    assert "Cancel this order" in page
    assert [step.done for step in response.context["steps"]] == [False] * 4


def test_order_page_shows_background_work_once_done(client, order, product):
    EmailDelivery.objects.create(
        key=confirmation_key(order.pk), to="x", subject="y", sent_at=timezone.now()
    )
    StockMovement.objects.create(
        product=product, reference=f"order:{order.pk}", quantity=-2, stock_at_booking=6
    )
    SalesRecord.objects.create(
        order=order,
        country="UK",
        day=order.created_at.date(),
        lines=1,
        units=2,
        revenue=5,
    )
    index_products([product.pk])
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:detail", args=[order.pk]))

    assert [step.done for step in response.context["steps"]] == [True] * 4


def test_order_page_shows_cancelled_units_and_the_total_of_what_remains(
    client, order, product
):
    cancel_order(order, {product.code: 1})
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:detail", args=[order.pk]))

    page = " ".join(response.content.decode().split())
    assert "<dt>Partly cancelled</dt>" in page
    assert (
        '<td class="num">2</td> <td class="num">1</td> '
        '<td class="num">£2.50</td> <td class="num">£2.50</td>'
    ) in page
    assert (
        '<th colspan="4">Total of what remains</th><th class="num">£2.50</th>' in page
    )
    assert "Cancel the rest of this order" in page


def test_order_page_counts_stock_returns_of_every_cancellation(client, order, product):
    cancel_order(order, {product.code: 1})
    cancel_order(order, {product.code: 1})
    for number in (1, 2):
        EmailDelivery.objects.create(
            key=cancellation_key(order.pk, number),
            to="x",
            subject="y",
            sent_at=timezone.now(),
        )
        StockMovement.objects.create(
            product=product,
            reference=f"order:{order.pk}:cancel:{number}",
            quantity=1,
            stock_at_booking=6 + number,
        )
    index_products([product.pk])
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:detail", args=[order.pk]))

    steps = {step.label: step.done for step in response.context["steps"]}
    assert steps["Cancellation email sent"] is True
    assert steps["Stock return booked"] is True
    assert steps["Search index updated after cancelling"] is True


def test_order_page_waits_for_the_stock_return_of_the_latest_cancellation(
    client, order, product
):
    cancel_order(order, {product.code: 1})
    cancel_order(order, {product.code: 1})
    StockMovement.objects.create(
        product=product,
        reference=f"order:{order.pk}:cancel:1",
        quantity=1,
        stock_at_booking=7,
    )
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:detail", args=[order.pk]))

    steps = {step.label: step.done for step in response.context["steps"]}
    assert steps["Stock return booked"] is False


def test_order_page_ignores_an_index_entry_older_than_the_order(client, order, product):
    index_products([product.pk])
    SearchEntry.objects.update(indexed_at=order.created_at - timedelta(seconds=1))
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:detail", args=[order.pk]))

    steps = {step.label: step.done for step in response.context["steps"]}
    assert steps["Search index updated"] is False


@pytest.mark.parametrize("name", ["orders:detail", "orders:cancel"])
def test_other_customers_order_is_answered_like_an_unknown_id(client, order, name):
    client.force_login(CustomerFactory().user)
    method = client.post if name == "orders:cancel" else client.get

    theirs = method(reverse(name, args=[order.pk]))
    unknown = method(reverse(name, args=[order.pk + 1000]))

    assert theirs.status_code == unknown.status_code == 404
    assert without_csrf(theirs.content) == without_csrf(unknown.content)
    assert order.payment_reference.encode() not in theirs.content


@pytest.mark.parametrize(
    ("name", "method"),
    [("orders:list", "get"), ("orders:detail", "get"), ("orders:cancel", "post")],
)
def test_anonymous_visitor_is_sent_to_sign_in(client, order, name, method):
    url = reverse(name, kwargs={"order_id": order.pk} if name != "orders:list" else {})

    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response.url.startswith(f"{reverse('login')}?next=")


def test_owner_cancels_an_order_and_gets_the_stock_back(client, order, product):
    client.force_login(order.customer.user)

    response = client.post(reverse("orders:cancel", args=[order.pk]), follow=True)

    order.refresh_from_db()
    product.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert product.stock == 8
    assert order.payment_reference in SimulatedGateway().voided()
    assert "Your order is cancelled" in response.content.decode()
    assert "Cancel this order" not in response.content.decode()
    labels = [step.label for step in response.context["steps"]]
    assert "Cancellation email sent" in labels


def test_cancel_by_another_customer_leaves_the_order_placed(client, order):
    client.force_login(CustomerFactory().user)

    client.post(reverse("orders:cancel", args=[order.pk]))

    order.refresh_from_db()
    assert order.status == Order.Status.PLACED


def test_cancel_is_not_done_by_a_get(client, order):
    client.force_login(order.customer.user)

    response = client.get(reverse("orders:cancel", args=[order.pk]))

    order.refresh_from_db()
    assert response.status_code == 405
    assert order.status == Order.Status.PLACED


def test_resend_queues_the_confirmation_on_the_critical_queue(client, order, broker):
    client.force_login(order.customer.user)

    response = client.post(reverse("orders:resend", args=[order.pk]))

    assert response.status_code == 302
    [message] = queued_messages(broker, "critical")
    assert message["headers"]["task"] == "orders.tasks.send_order_confirmation_task"
    assert queued_messages(broker, "emails") == []


def test_resend_of_another_customers_order_is_not_found(client, order, broker):
    client.force_login(CustomerFactory().user)

    response = client.post(reverse("orders:resend", args=[order.pk]))

    assert response.status_code == 404
    assert queued_messages(broker, "critical") == []
