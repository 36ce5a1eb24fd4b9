"""The demo catalog and the demo accounts."""

import csv
import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from shop.demo import DEMO_CATALOG, DEMO_PASSWORD, load_demo_catalog
from shop.models import Customer, Product
from tests.support import queued_task_names

pytestmark = pytest.mark.django_db


def catalog_rows() -> list[dict[str, str]]:
    with open(DEMO_CATALOG, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_demo_catalog_file_is_small_and_can_show_a_sold_out_product():
    rows = catalog_rows()

    stocks = [int(row["stock"]) for row in rows]
    assert 30 <= len(rows) <= 40
    assert len({row["code"] for row in rows}) == len(rows)
    assert all(1 <= stock <= 200 for stock in stocks)
    assert sum(1 for stock in stocks if stock <= 3) >= 2
    assert all(row["name"] and row["description"] for row in rows)


def test_load_demo_catalog_creates_every_product_of_the_file():
    result = load_demo_catalog()

    rows = catalog_rows()
    assert result.created == len(rows) == Product.objects.count()
    product = Product.objects.get(code=rows[0]["code"])
    assert (product.name, str(product.price), product.stock) == (
        rows[0]["name"],
        rows[0]["price"],
        int(rows[0]["stock"]),
    )


def test_load_demo_catalog_again_changes_nothing_and_keeps_stock():
    load_demo_catalog()
    Product.objects.filter(code="GW-1034").update(stock=0)
    before = list(Product.objects.values_list("code", "name", "price", "updated_at"))

    result = load_demo_catalog()

    assert (result.created, result.changed) == (0, 0)
    assert result.unchanged == len(before)
    assert Product.objects.get(code="GW-1034").stock == 0
    assert list(Product.objects.values_list("code", "name", "price", "updated_at")) == (
        before
    )


def test_load_demo_catalog_command_queues_index_updates_after_commit(
    broker, django_capture_on_commit_callbacks
):
    out = StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo_catalog", stdout=out)

    assert re.search(r"products: \d+ created, 0 changed, 0 unchanged", out.getvalue())
    assert queued_task_names(broker, "search") == [
        "shop.tasks.update_search_index_task"
    ]


def test_seed_demo_creates_two_customers_and_a_superuser_with_the_demo_password():
    out = StringIO()

    call_command("seed_demo", stdout=out)

    alice = authenticate(username="alice", password=DEMO_PASSWORD)
    admin = authenticate(username="admin", password=DEMO_PASSWORD)
    assert alice is not None and alice.email == "alice@example.com"
    assert admin is not None and admin.is_staff and admin.is_superuser
    assert set(Customer.objects.values_list("user__username", flat=True)) == {
        "alice",
        "bob",
    }
    assert "shop-demo" in out.getvalue() and "bob@example.com" in out.getvalue()


def test_seed_demo_again_repairs_a_changed_password_and_adds_nothing():
    call_command("seed_demo", stdout=StringIO())
    bob = get_user_model().objects.get(username="bob")
    bob.set_password("something else")
    bob.save()

    call_command("seed_demo", stdout=StringIO())

    assert authenticate(username="bob", password=DEMO_PASSWORD) is not None
    assert get_user_model().objects.count() == 3
    assert Customer.objects.count() == 2
