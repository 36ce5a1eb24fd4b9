"""Storefront pages: catalog, search, product and cart."""

from decimal import Decimal

import pytest
from django.urls import reverse

from shop.cart import SESSION_KEY
from shop.search import index_products
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_catalog_lists_products_on_sale_only(client):
    ProductFactory(name="Set of 3 cake tins pantry design", price=Decimal("4.95"))
    ProductFactory(name="Discontinued doormat", is_active=False)

    response = client.get(reverse("shop:catalog"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Set of 3 cake tins pantry design" in page
    assert "£4.95" in page
    assert "Discontinued doormat" not in page
    assert "1 product on sale." in page


def test_catalog_is_paginated(client):
    ProductFactory.create_batch(30)

    first = client.get(reverse("shop:catalog"))
    second = client.get(reverse("shop:catalog"), {"page": 2})

    assert len(first.context["page"]) == 24
    assert len(second.context["page"]) == 6
    assert "Page 2 of 2" in second.content.decode()


def test_catalog_marks_a_sold_out_product(client):
    ProductFactory(name="Paper chain kit", stock=0)

    response = client.get(reverse("shop:catalog"))

    assert "Sold out" in response.content.decode()


def test_layout_shows_navigation_and_cart_count(client):
    product = ProductFactory()
    client.post(reverse("shop:cart-add", args=[product.code]), {"quantity": 3})

    response = client.get(reverse("shop:catalog"))

    page = response.content.decode()
    assert 'action="/search/"' in page
    assert "Sign in" in page
    assert '<span class="count" aria-label="3 items">3</span>' in page


def test_search_page_shows_the_indexed_name_until_the_index_task_runs(client):
    product = ProductFactory(name="Lunch bag red retrospot", price=Decimal("1.65"))
    index_products([product.pk])
    product.name = "Lunch bag blue polkadot"
    product.price = Decimal("9.99")
    product.stock = 0
    product.save()

    before = client.get(reverse("shop:search"), {"q": "lunch bag"})
    index_products([product.pk])
    after = client.get(reverse("shop:search"), {"q": "lunch bag"})

    assert "Lunch bag red retrospot" in before.content.decode()
    assert "Lunch bag blue polkadot" not in before.content.decode()
    assert "£1.65" in before.content.decode()
    assert "In stock" in before.content.decode()
    assert "Lunch bag blue polkadot" in after.content.decode()
    assert "£9.99" in after.content.decode()
    assert "Sold out" in after.content.decode()


def test_search_page_says_when_nothing_matches(client):
    index_products([ProductFactory(name="Alarm clock bakelike").pk])

    response = client.get(reverse("shop:search"), {"q": "teapot"})

    assert response.status_code == 200
    assert "No product matches “teapot”." in response.content.decode()


def test_product_page_shows_price_stock_and_add_to_cart(client):
    product = ProductFactory(
        code="21730", name="Glass star frosted t-light holder", stock=7
    )

    response = client.get(reverse("shop:product", args=["21730"]))

    page = response.content.decode()
    assert response.status_code == 200
    assert product.name in page
    assert "£2.50" in page
    assert "7 available" in page
    assert "Add to cart" in page


def test_product_page_of_an_inactive_product_is_not_found(client):
    ProductFactory(code="99999", is_active=False)

    response = client.get(reverse("shop:product", args=["99999"]))

    assert response.status_code == 404


def test_adding_to_cart_twice_adds_up_the_quantities(client):
    product = ProductFactory()

    client.post(reverse("shop:cart-add", args=[product.code]), {"quantity": 2})
    response = client.post(
        reverse("shop:cart-add", args=[product.code]), {"quantity": 3}
    )

    assert response.url == reverse("shop:cart")
    assert client.session[SESSION_KEY] == {product.code: 5}


def test_adding_a_zero_quantity_is_refused(client):
    product = ProductFactory()

    response = client.post(
        reverse("shop:cart-add", args=[product.code]), {"quantity": 0}
    )

    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_cart_page_shows_lines_at_todays_prices_and_total(client):
    product = ProductFactory(name="Hand warmer owl design", price=Decimal("2.10"))
    client.post(reverse("shop:cart-add", args=[product.code]), {"quantity": 3})
    product.price = Decimal("2.00")
    product.save()

    response = client.get(reverse("shop:cart"))

    page = response.content.decode()
    assert "Hand warmer owl design" in page
    assert "£6.00" in page
    assert "Check out" in page


def test_cart_update_changes_the_quantity_and_zero_removes_the_line(client):
    kept, removed = ProductFactory(), ProductFactory()
    client.post(reverse("shop:cart-add", args=[kept.code]), {"quantity": 1})
    client.post(reverse("shop:cart-add", args=[removed.code]), {"quantity": 1})

    client.post(reverse("shop:cart-update"), {"code": kept.code, "quantity": 4})
    client.post(reverse("shop:cart-update"), {"code": removed.code, "quantity": 0})

    assert client.session[SESSION_KEY] == {kept.code: 4}


def test_cart_shows_a_product_no_longer_sold(client):
    product = ProductFactory(code="22138")
    client.post(reverse("shop:cart-add", args=[product.code]), {"quantity": 1})
    product.is_active = False
    product.save()

    response = client.get(reverse("shop:cart"))

    assert "Product 22138 is no longer sold" in response.content.decode()


def test_empty_cart_says_so(client):
    response = client.get(reverse("shop:cart"))

    assert "Your cart is empty." in response.content.decode()


def test_sign_in_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert "Sign in" in response.content.decode()
    assert 'name="password"' in response.content.decode()


def test_cart_update_ignores_a_product_not_in_the_cart(client):
    product = ProductFactory()

    client.post(reverse("shop:cart-update"), {"code": product.code, "quantity": 2})

    assert SESSION_KEY not in client.session
