"""The orders API: who may see what, the error shape, search and the schema."""

import uuid
from decimal import Decimal

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from orders.models import Order
from orders.payments import CARD_APPROVED
from shop.search import index_products
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/orders/"


@pytest.fixture
def product():
    return ProductFactory(code="22423", name="Regency cakestand", stock=10)


def post_order(client, body, **headers):
    return client.post(ORDERS, body, content_type="application/json", headers=headers)


def test_owner_reads_own_order_with_its_lines_and_background_work(client, order):
    client.force_login(order.customer.user)

    response = client.get(f"{ORDERS}{order.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == order.pk
    assert body["status"] == "PLACED"
    assert body["lines"] == [
        {
            "product": "22423",
            "name": "Regency cakestand",
            "quantity": 2,
            "cancelled_quantity": 0,
            "unit_price": "2.50",
            "amount": "5.00",
        }
    ]
    assert {"label": "Confirmation email sent", "done": False} in body[
        "background_work"
    ]


def test_other_customers_order_is_answered_like_an_unknown_id(client, order):
    client.force_login(CustomerFactory().user)

    theirs = client.get(f"{ORDERS}{order.pk}/")
    unknown = client.get(f"{ORDERS}{order.pk + 1000}/")

    assert theirs.status_code == unknown.status_code == 404
    assert theirs.content == unknown.content
    assert theirs.json() == {
        "error": "not_found",
        "detail": "There is no order with this id.",
    }


@pytest.mark.parametrize("path", [ORDERS, f"{ORDERS}1/"])
def test_anonymous_call_is_refused_with_401(client, path):
    response = client.get(path)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    assert response.json()["error"] == "not_authenticated"


def test_anonymous_checkout_is_refused_without_an_order(client, product):
    body = {"lines": [{"product": product.code, "quantity": 1}], "card_number": ""}

    response = post_order(client, body, **{"Idempotency-Key": "k"})

    assert response.status_code == 401
    assert not Order.objects.exists()


def test_bad_token_is_refused_with_401(client):
    response = client.get(ORDERS, headers={"Authorization": "Token nope"})

    assert response.status_code == 401
    assert response.json() == {
        "error": "authentication_failed",
        "detail": "Invalid token.",
    }


def test_token_holder_lists_only_own_orders(client, order):
    CustomerFactory()  # another customer, with no orders
    token = Token.objects.create(user=order.customer.user)

    response = client.get(ORDERS, headers={"Authorization": f"Token {token.key}"})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert [row["id"] for row in body["results"]] == [order.pk]


def test_list_is_empty_for_a_customer_without_orders(client, order):
    client.force_login(CustomerFactory().user)

    response = client.get(ORDERS)

    assert response.json()["results"] == []


def test_checkout_answers_201_with_the_order_and_its_location(client, product):
    customer = CustomerFactory()
    client.force_login(customer.user)
    body = {
        "lines": [{"product": product.code, "quantity": 3}],
        "card_number": "4242 4242 4242 4242",
    }

    response = post_order(client, body, **{"Idempotency-Key": uuid.uuid4().hex})

    assert response.status_code == 201
    order = Order.objects.get(customer=customer)
    assert response.json()["id"] == order.pk
    assert response.json()["total"] == "7.50"
    assert response.headers["Location"].endswith(f"{ORDERS}{order.pk}/")


def test_checkout_creates_a_customer_profile_for_a_user_without_one(
    client, django_user_model, product
):
    user = django_user_model.objects.create_user("staffer", password="x")
    client.force_login(user)
    body = {
        "lines": [{"product": product.code, "quantity": 1}],
        "card_number": CARD_APPROVED,
    }

    response = post_order(client, body, **{"Idempotency-Key": uuid.uuid4().hex})

    assert response.status_code == 201
    assert Order.objects.get().customer.user == user


def test_checkout_without_idempotency_key_is_refused(client, product):
    client.force_login(CustomerFactory().user)
    body = {
        "lines": [{"product": product.code, "quantity": 1}],
        "card_number": CARD_APPROVED,
    }

    response = post_order(client, body)

    assert response.status_code == 400
    assert response.json()["error"] == "missing_idempotency_key"
    assert "Idempotency-Key header" in response.json()["detail"]
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("{", "JSON parse error"),
        ("[]", "Invalid data. Expected a dictionary, but got list."),
        ("{}", "lines: This field is required."),
        ('{"lines": 3, "card_number": ""}', "lines: Expected a list of items"),
        ('{"lines": [{"quantity": 1}], "card_number": ""}', "lines[0].product: This"),
        ('{"lines": [{"product": "1", "quantity": null}], "card_number": ""}', "null"),
        ('{"lines": []}', "card_number: This field is required."),
    ],
    ids=["json", "list", "empty", "lines", "product", "quantity", "card"],
)
def test_malformed_body_is_refused_with_the_field_at_fault(client, body, detail):
    client.force_login(CustomerFactory().user)

    response = client.post(
        ORDERS, body, content_type="application/json", headers={"Idempotency-Key": "k"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == "malformed"
    assert detail in response.json()["detail"]
    assert not Order.objects.exists()


def test_order_without_lines_is_refused(client):
    client.force_login(CustomerFactory().user)
    body = {"lines": [], "card_number": CARD_APPROVED}

    response = post_order(client, body, **{"Idempotency-Key": "k"})

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_order",
        "detail": "The order has no lines.",
    }


def test_form_encoded_checkout_is_refused_as_unsupported(client):
    client.force_login(CustomerFactory().user)

    response = client.post(
        ORDERS, {"card_number": CARD_APPROVED}, headers={"Idempotency-Key": "k"}
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_product_search_answers_from_the_index_without_signing_in(client):
    product = ProductFactory(name="Jumbo bag red retrospot", price=Decimal("1.95"))
    index_products([product.pk])
    product.name = "Renamed bag"
    product.save()

    response = client.get("/api/products/", {"q": "retrospot"})

    assert response.status_code == 200
    [entry] = response.json()
    assert entry["name"] == "Jumbo bag red retrospot"
    assert entry["price"] == "1.95"
    assert entry["in_stock"] is True


def test_product_search_without_words_finds_nothing(client):
    index_products([ProductFactory().pk])

    response = client.get("/api/products/", {"q": "  "})

    assert response.json() == []


def test_openapi_schema_generates_and_validates_without_warnings(tmp_path):
    schema = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(schema))

    text = schema.read_text()
    assert "Idempotency-Key" in text
    assert "payment_declined" in text


def test_swagger_ui_is_served_from_local_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert "drf_spectacular_sidecar/swagger-ui-dist" in response.content.decode()
    assert "cdn" not in response.content.decode().lower()


def test_schema_endpoint_answers_openapi(client):
    response = client.get("/api/schema/", headers={"Accept": "application/json"})

    assert response.status_code == 200
