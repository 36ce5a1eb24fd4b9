"""Replaying Online Retail invoices through checkout and cancellation."""

import re
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from orders.models import Order
from orders.replay import read_invoices, replay_orders
from shop.importer import OnlineRetailFile, import_online_retail
from shop.models import Product
from tests.factories import CustomerFactory, ProductFactory
from tests.online_retail import (
    line,
    read_real_lines,
    real_online_retail_csv,
    write_online_retail,
)

pytestmark = pytest.mark.django_db

DAY_1 = "2010-12-01 09:00:00"
DAY_2 = "2010-12-02 09:00:00"
DAY_3 = "2010-12-03 09:00:00"


@pytest.fixture(autouse=True)
def fresh_gateway():
    """Forget earlier authorizations: SQLite hands out the same ids again."""
    redis.Redis.from_url(settings.ORDERS_GATEWAY_REDIS_URL).flushdb()


@pytest.fixture
def shop():
    """Two imported customers and three products, as the import leaves them."""
    CustomerFactory(external_id="17850")
    CustomerFactory(external_id="13047")
    return {
        code: ProductFactory(code=code, stock=stock)
        for code, stock in [("85123A", 20), ("71053", 20), ("22633", 5)]
    }


def write(tmp_path, lines):
    return write_online_retail(tmp_path / "online_retail.csv", lines)


def stock(code: str) -> int:
    return Product.objects.get(code=code).stock


def test_replay_places_one_order_per_invoice_as_its_customer(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 6),
            line("536365", "71053", 2),
            line("536366", "22633", 1, customer="13047.0", date=DAY_2),
        ],
    )

    report = replay_orders(path)

    orders = Order.objects.order_by("pk")
    assert report.accepted == Counter(placed=2)
    assert [(o.source_invoice, o.customer.external_id) for o in orders] == [
        ("536365", "17850"),
        ("536366", "13047"),
    ]
    assert orders[0].idempotency_key == "invoice:536365"
    assert stock("85123A") == 14


def test_replay_merges_repeated_codes_and_drops_lines_that_are_no_sale(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 2),
            line("536365", "85123a", 3),
            line("536365", "POST", 1, price="18.00"),
            line("536365", "71053", -1, price="0"),
            line("536365", "71053", 1, price="0"),
        ],
    )

    report = replay_orders(path)

    order = Order.objects.get()
    assert list(order.lines.values_list("product__code", "quantity")) == [("85123A", 5)]
    assert report.dropped_lines == Counter(
        postage=1, wrong_sign_quantity=1, zero_price=1
    )


def test_replay_rejects_invoices_by_reason(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 1, customer=""),
            line("536366", "85123A", 1, customer="99999.0"),
            line("536367", "POST", 1, price="18.00"),
            line("536368", "22633", 6),
            line("536369", "10002", 1),
            line("536370", "71053", 10_001),
        ],
    )

    report = replay_orders(path)

    assert report.accepted == Counter()
    assert report.rejected == Counter(
        no_customer=1,
        unknown_customer=1,
        no_product_lines=1,
        out_of_stock=1,
        unknown_product=1,
        invalid_order=1,
    )
    assert "above the limit of 10000" in report.examples["invalid_order"]
    assert not Order.objects.exists()


def test_replay_cancels_the_order_a_cancellation_undoes_and_returns_its_stock(
    shop, tmp_path
):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 4),
            line("536365", "71053", 2),
            line("536366", "85123A", 4, date=DAY_2),
            line("C536367", "71053", -2, date=DAY_3),
            line("C536367", "85123A", -4, date=DAY_3),
        ],
    )

    report = replay_orders(path)

    first, second = Order.objects.order_by("pk")
    assert report.accepted == Counter(placed=2, cancelled=1)
    assert (first.status, second.status) == (
        Order.Status.CANCELLED,
        Order.Status.PLACED,
    )
    assert (stock("85123A"), stock("71053")) == (16, 20)


def test_replay_cancels_the_latest_matching_order_once(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 2),
            line("536366", "85123A", 2, date=DAY_2),
            line("C536367", "85123A", -2, date=DAY_3),
            line("C536368", "85123A", -2, date=DAY_3),
            line("C536369", "85123A", -2, date=DAY_3),
        ],
    )

    report = replay_orders(path)

    assert report.accepted == Counter(placed=2, cancelled=2)
    assert report.rejected == Counter(no_original=1)
    assert set(Order.objects.values_list("status", flat=True)) == {"CANCELLED"}


def test_replay_cancels_the_units_a_partial_cancellation_names(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 6),
            line("536365", "71053", 2),
            line("C536366", "85123A", -2, date=DAY_2),
            line("C536367", "71053", -3, date=DAY_2),
            line("C536368", "22633", -1, customer="13047.0", date=DAY_2),
        ],
    )

    report = replay_orders(path)

    order = Order.objects.get()
    assert report.accepted == Counter(placed=1, partially_cancelled=1)
    assert report.rejected == Counter(no_original=2)
    assert (order.status, order.total, order.cancellation_count) == (
        Order.Status.PLACED,
        Decimal("15.00"),
        1,
    )
    assert list(
        order.lines.values_list("product__code", "quantity", "cancelled_quantity")
    ) == [("85123A", 6, 2), ("71053", 2, 0)]
    assert stock("85123A") == 16


def test_replay_matches_later_cancellations_to_the_units_that_remain(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 6),
            line("C536366", "85123A", -2, date=DAY_2),
            line("C536367", "85123A", -4, date=DAY_2),
            line("C536368", "85123A", -1, date=DAY_3),
        ],
    )

    report = replay_orders(path)

    order = Order.objects.get()
    assert report.accepted == Counter(placed=1, partially_cancelled=1, cancelled=1)
    assert report.rejected == Counter(no_original=1)
    assert (order.status, order.total, order.cancellation_count) == (
        Order.Status.CANCELLED,
        Decimal("0.00"),
        2,
    )
    assert stock("85123A") == 20


def test_second_replay_applies_no_partial_cancellation_twice(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 6),
            line("C536366", "85123A", -2, date=DAY_2),
            line("C536367", "85123A", -1, date=DAY_3),
        ],
    )
    replay_orders(path)

    again = replay_orders(path)

    order = Order.objects.get()
    assert again.accepted == Counter(placed_before=1, cancelled_before=2)
    assert order.lines.get().cancelled_quantity == 3
    assert order.cancellation_count == 2
    assert stock("85123A") == 17


def test_second_replay_creates_and_cancels_nothing_new(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 2),
            line("536366", "85123A", 2, date=DAY_2),
            line("C536367", "85123A", -2, date=DAY_3),
        ],
    )
    replay_orders(path)
    orders = list(Order.objects.values_list("pk", "status"))

    again = replay_orders(path)

    assert again.accepted == Counter(placed_before=2, cancelled_before=1)
    assert list(Order.objects.values_list("pk", "status")) == orders
    assert stock("85123A") == 18


def test_replay_keeps_to_the_first_days_and_the_limit(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 1, date="2010-12-01 08:26:00"),
            line("536366", "85123A", 1, date="2010-12-01 17:00:00"),
            line("536367", "85123A", 1, date="2010-12-02 00:00:00"),
        ],
    )

    one_day = replay_orders(path, days=1)
    limited = replay_orders(path, limit=1)

    assert one_day.accepted == Counter(placed=2)
    assert limited.accepted == Counter(placed_before=1)
    assert Order.objects.count() == 2


def test_replay_paces_invoices_to_the_rate(shop, tmp_path):
    path = write(tmp_path, [line(f"5363{n:02}", "85123A", 1) for n in range(5)])

    report = replay_orders(path, rate=20)

    assert report.accepted == Counter(placed=5)
    assert report.seconds >= 4 / 20


def test_replay_times_every_checkout(shop, tmp_path):
    path = write(
        tmp_path,
        [
            line("536365", "85123A", 1),
            line("536366", "22633", 6),
            line("536367", "85123A", 1, customer=""),
        ],
    )

    report = replay_orders(path)

    assert len(report.checkout_seconds) == 2
    assert 0 < report.percentile_ms(0.5) <= report.percentile_ms(0.99)


def test_invoices_interrupted_by_another_are_read_whole(tmp_path):
    path = write(
        tmp_path,
        [
            line("542806", "85123A", 1),
            line("542807", "71053", 1),
            line("542806", "22633", 1),
        ],
    )

    invoices = list(read_invoices(OnlineRetailFile(path)))

    assert [(i.number, len(i.lines)) for i in invoices] == [
        ("542806", 2),
        ("542807", 1),
    ]


def test_replay_command_prints_outcomes_and_latency(shop, tmp_path):
    path = write(tmp_path, [line("536365", "85123A", 1), line("536366", "X", 1)])
    out = StringIO()

    call_command("replay_orders", str(path), "--no-progress", stdout=out)

    printed = out.getvalue()
    assert re.search(r"accepted 1:\n  placed +1\n", printed)
    assert re.search(r"rejected 1:\n  no_product_lines +1\n", printed)
    assert re.search(r"p50 [\d.]+ ms, p99 [\d.]+ ms", printed)


@pytest.mark.real_data
def test_real_file_replay_of_the_first_two_days_accounts_for_every_invoice():
    path = real_online_retail_csv()
    invoices, end = set(), ""
    for row in read_real_lines(path):
        end = end or str(date.fromisoformat(row["InvoiceDate"][:10]) + timedelta(2))
        if row["InvoiceDate"] >= end:
            break
        invoices.add(row["InvoiceNo"])
    import_online_retail(path)

    report = replay_orders(path, days=2)

    assert report.invoices == len(invoices)
    assert report.accepted.total() + report.rejected.total() == len(invoices)
    placed = Order.objects.exclude(source_invoice="")
    assert placed.count() == report.accepted["placed"] > 200
    assert set(placed.values_list("source_invoice", flat=True)) <= invoices
    assert report.rejected["no_customer"] > 0
