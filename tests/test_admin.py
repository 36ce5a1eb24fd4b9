"""The admin: every registered list renders, and orders change only via services."""

import uuid

import pytest
from django.urls import reverse

from orders.models import Order
from orders.payments import CARD_APPROVED
from orders.services import LineRequest, place_order
from shop.search import index_products
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order():
    product = ProductFactory(stock=4)
    index_products([product.pk])
    return place_order(
        customer=CustomerFactory(),
        lines=[LineRequest(product.code, 1)],
        card_number=CARD_APPROVED,
        idempotency_key=uuid.uuid4().hex,
    ).order


@pytest.mark.parametrize(
    "model",
    [
        "shop_product",
        "shop_customer",
        "shop_stockmovement",
        "shop_searchentry",
        "orders_order",
        "orders_salesrecord",
        "notifications_emaildelivery",
    ],
)
def test_admin_change_list_renders(admin_client, order, model):
    response = admin_client.get(reverse(f"admin:{model}_changelist"), {"q": "1"})

    assert response.status_code == 200


def test_admin_order_page_shows_its_lines_read_only(admin_client, order):
    response = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))

    assert response.status_code == 200
    assert order.payment_reference in response.content.decode()
    assert not response.context["has_change_permission"]


def test_admin_action_cancels_the_selected_orders(admin_client, order):
    response = admin_client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "cancel_orders", "_selected_action": [order.pk]},
        follow=True,
    )

    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    assert "Cancelled 1 order(s)." in response.content.decode()


def test_admin_does_not_offer_to_add_an_order(admin_client):
    response = admin_client.get(reverse("admin:orders_order_add"))

    assert response.status_code == 403


def test_admin_product_change_queues_a_search_index_update(
    admin_client, django_capture_on_commit_callbacks
):
    product = ProductFactory(code="22423", name="Regency cakestand", stock=3)
    form = {
        "code": "22423",
        "name": "Regency cakestand 3 tier",
        "description": "",
        "price": "12.75",
        "stock": "3",
        "is_active": "on",
    }

    with django_capture_on_commit_callbacks() as callbacks:
        admin_client.post(reverse("admin:shop_product_change", args=[product.pk]), form)

    product.refresh_from_db()
    assert product.name == "Regency cakestand 3 tier"
    assert len(callbacks) == 1
