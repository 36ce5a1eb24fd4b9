"""The Online Retail import: products, customers, idempotency, index queueing."""

import logging
import re
from collections import Counter
from decimal import Decimal
from io import StringIO

import pytest
import redis
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from kombu.exceptions import OperationalError

from orders.payments import CARD_APPROVED
from orders.services import LineRequest, place_order
from shop import importer
from shop.importer import customer_external_id, import_online_retail
from shop.models import Customer, Product
from tests.factories import ProductFactory
from tests.online_retail import (
    line,
    read_real_lines,
    real_online_retail_csv,
    write_online_retail,
)
from tests.support import queued_task_names

pytestmark = pytest.mark.django_db

# One of each kind of dirt the real file holds.
DIRTY_LINES = [
    line("536365", "85123A", 6, description="WHITE HANGING HEART T-LIGHT HOLDER"),
    line("536365", "POST", 1, price="18.00", description="POSTAGE"),
    # Lower-case code, no customer, a later name and price.
    line(
        "536366",
        "85123a",
        4,
        date="2011-01-05 10:00:00",
        price="2.95",
        customer="",
        description="CREAM HANGING HEART T-LIGHT HOLDER",
    ),
    # The latest line of the code is a stock note priced 0.
    line(
        "536367",
        "85123A",
        -12,
        date="2011-02-01 09:00:00",
        price="0",
        customer="",
        description="?",
    ),
    line(
        "536368",
        "22633",
        10,
        date="2010-12-02 11:00:00",
        price="1.85",
        customer="13047.0",
        country="EIRE",
        description="HAND WARMER UNION JACK",
    ),
    line(
        "C536369",
        "22633",
        -2,
        date="2010-12-03 11:00:00",
        price="1.85",
        customer="13047.0",
        country="EIRE",
        description="HAND WARMER UNION FLAG",
    ),
    # Only ever seen as a damaged note: never sold.
    line("536370", "21000", 5, price="0", customer="", description="damaged"),
    line(
        "536371",
        "D",
        -1,
        date="2011-03-01 12:00:00",
        price="5.00",
        customer="13047.0",
        country="France",
        description="Discount",
    ),
    line("536372", "gift_0001_20", 1, price="16.67", customer=""),
    line("536373", "DCGSSGIRL", 1, price="3.29", customer=""),
]


@pytest.fixture
def dirty_csv(tmp_path):
    return write_online_retail(tmp_path / "online_retail.csv", DIRTY_LINES)


def product_rows() -> list[tuple]:
    return list(
        Product.objects.order_by("code").values_list(
            "code", "name", "description", "price", "stock", "updated_at"
        )
    )


def test_import_names_and_prices_a_product_from_its_latest_sale(dirty_csv):
    import_online_retail(dirty_csv)

    product = Product.objects.get(code="85123A")
    assert product.name == "CREAM HANGING HEART T-LIGHT HOLDER"
    assert product.price == Decimal("2.95")
    assert product.description == "WHITE HANGING HEART T-LIGHT HOLDER"


def test_import_keeps_other_names_of_a_code_searchable_in_its_description(dirty_csv):
    import_online_retail(dirty_csv)

    product = Product.objects.get(code="22633")
    assert product.name == "HAND WARMER UNION JACK"
    assert product.description == "HAND WARMER UNION FLAG"


def test_import_takes_names_that_differ_only_in_spaces_as_one(tmp_path):
    path = write_online_retail(
        tmp_path / "online_retail.csv",
        [
            line("536365", "22900", 1, description=" SET 2 TEA TOWELS  I LOVE LONDON "),
            line("536366", "22900", 1, description="SET 2 TEA TOWELS I LOVE LONDON"),
        ],
    )

    import_online_retail(path)

    product = Product.objects.get(code="22900")
    assert (product.name, product.description) == (
        "SET 2 TEA TOWELS I LOVE LONDON",
        "",
    )


def test_import_stocks_each_product_with_the_units_it_sold(dirty_csv):
    import_online_retail(dirty_csv)

    stock = dict(Product.objects.values_list("code", "stock"))
    assert stock == {"85123A": 10, "22633": 10}


def test_import_skips_codes_that_are_no_products_and_price_0_lines_by_reason(
    dirty_csv,
):
    report = import_online_retail(dirty_csv)

    assert report.used == Counter(sale=3, cancellation=1)
    assert report.skipped == Counter(
        zero_price=2, postage=1, discount=1, gift_voucher=1, dcgs_listing=1
    )
    assert report.lines_read == len(DIRTY_LINES)
    assert report.never_sold_codes == 1
    assert not Product.objects.filter(code="21000").exists()
    assert (report.lower_case_codes, report.lower_case_lines) == (1, 1)


def test_import_creates_one_customer_per_id_with_the_country_of_its_latest_line(
    dirty_csv,
):
    report = import_online_retail(dirty_csv)

    customers = dict(Customer.objects.values_list("external_id", "country"))
    assert customers == {"17850": "United Kingdom", "13047": "France"}
    assert report.multi_country_customers == 1
    assert report.without_customer == 5


def test_import_gives_customers_accounts_that_cannot_log_in(dirty_csv):
    import_online_retail(dirty_csv)

    user = Customer.objects.get(external_id="17850").user
    assert (user.username, user.email) == (
        "customer-17850",
        "customer-17850@customers.example",
    )
    assert not user.has_usable_password()


def test_import_reads_a_gzipped_file(tmp_path):
    path = write_online_retail(tmp_path / "online_retail.csv.gz", DIRTY_LINES)

    report = import_online_retail(path)

    assert report.products.created == 2
    assert report.customers_created == 2


def test_import_counts_malformed_lines_and_goes_on(tmp_path):
    broken = line("536374", "22633", 1)
    broken[3] = "three"
    path = write_online_retail(tmp_path / "online_retail.csv", [*DIRTY_LINES, broken])

    report = import_online_retail(path)

    assert report.skipped["malformed"] == 1
    assert report.products.created == 2


def test_import_again_writes_nothing(dirty_csv):
    first = import_online_retail(dirty_csv)
    rows, users = product_rows(), get_user_model().objects.count()

    second = import_online_retail(dirty_csv)

    assert (first.products.created, first.customers_created) == (2, 2)
    assert (second.products.created, second.products.changed) == (0, 0)
    assert (second.customers_created, second.customers_changed) == (0, 0)
    assert second.products.product_ids == []
    assert second.used == first.used and second.skipped == first.skipped
    assert product_rows() == rows
    assert get_user_model().objects.count() == users


def test_import_again_keeps_the_stock_that_orders_took(dirty_csv):
    import_online_retail(dirty_csv)
    place_order(
        customer=Customer.objects.get(external_id="17850"),
        lines=[LineRequest("85123A", 3)],
        card_number=CARD_APPROVED,
        idempotency_key="after-import",
    )

    import_online_retail(dirty_csv)

    assert Product.objects.get(code="85123A").stock == 7


def test_import_updates_a_changed_name_and_price_but_not_stock(dirty_csv, tmp_path):
    import_online_retail(dirty_csv)
    later = line(
        "536380",
        "22633",
        5,
        date="2011-06-01 10:00:00",
        price="2.10",
        customer="13047.0",
        description="HAND WARMER BRITISH FLAG",
    )
    path = write_online_retail(tmp_path / "later.csv", [*DIRTY_LINES, later])

    report = import_online_retail(path)

    product = Product.objects.get(code="22633")
    assert (report.products.created, report.products.changed) == (0, 1)
    assert (product.name, product.price, product.stock) == (
        "HAND WARMER BRITISH FLAG",
        Decimal("2.10"),
        10,
    )
    assert product.description == "HAND WARMER UNION FLAG; HAND WARMER UNION JACK"


def test_import_leaves_products_of_other_sources_alone(dirty_csv):
    demo = ProductFactory(code="GW-1001", name="Beeswax candles", stock=4)

    import_online_retail(dirty_csv)

    demo.refresh_from_db()
    assert (demo.name, demo.stock) == ("Beeswax candles", 4)


def test_import_queues_index_updates_in_chunks_only_after_commit(
    dirty_csv, broker, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(importer, "INDEX_CHUNK", 1)

    with django_capture_on_commit_callbacks() as callbacks:
        report = import_online_retail(dirty_csv)
    queued_before_commit = queued_task_names(broker, "search")
    for callback in callbacks:
        callback()

    assert queued_before_commit == []
    assert (
        queued_task_names(broker, "search")
        == ["shop.tasks.update_search_index_task"] * 2
    )
    assert report.products.index_tasks == 2
    assert report.products.product_ids == sorted(
        Product.objects.values_list("pk", flat=True)
    )


class UnreachableBroker:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def delay(self, product_ids: list[int]) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused."),
        redis.ConnectionError("Error 111 connecting to 127.0.0.1:1."),
    ],
)
def test_import_leaves_indexing_to_the_sweep_when_the_broker_is_down(
    dirty_csv, django_capture_on_commit_callbacks, monkeypatch, caplog, error
):
    monkeypatch.setattr(importer, "update_search_index_task", UnreachableBroker(error))

    with django_capture_on_commit_callbacks(execute=True):
        report = import_online_retail(dirty_csv)

    assert report.products.index_left_to_sweep == 2
    assert "reindex_stale_products_task" in "\n".join(report.summary())
    assert (
        "shop.importer",
        logging.WARNING,
        f"search index updates not queued products=2 error={error}",
    ) in caplog.record_tuples


def test_import_command_prints_counts_by_reason(dirty_csv):
    out = StringIO()

    call_command("import_online_retail", str(dirty_csv), "--no-progress", stdout=out)

    printed = out.getvalue()
    assert re.search(r"read 10 lines in [\d.]+ s \([\d,]+ lines/s\)", printed)
    assert re.search(r"  gift_voucher +1\n", printed)
    assert "products: 2 created, 0 changed, 0 unchanged" in printed
    assert "customers: 2 created, 0 changed, 0 unchanged" in printed


def test_import_command_refuses_a_file_that_is_not_online_retail(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order,total\n1,2.50\n")

    with pytest.raises(CommandError, match="no column InvoiceNo"):
        call_command("import_online_retail", str(path), "--no-progress")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("17850.0", "17850"), ("17850", "17850"), (" 12346.00 ", "12346"), ("", "")],
)
def test_customer_id_written_as_a_float_becomes_its_digits(value, expected):
    assert customer_external_id(value) == expected


@pytest.mark.parametrize("value", ["17850.5", "abc", "-1"])
def test_customer_id_that_is_no_whole_number_is_refused(value):
    with pytest.raises(ValueError, match="not a customer id"):
        customer_external_id(value)


@pytest.mark.real_data
def test_real_file_import_matches_the_figures_counted_from_the_file():
    path = real_online_retail_csv()
    codes, customers, sold, lines, service_lines = set(), set(), set(), 0, 0
    latest_date, latest_name = "", ""
    for row in read_real_lines(path):
        lines += 1
        code = row["StockCode"]
        codes.add(code)
        if row["CustomerID"]:
            customers.add(row["CustomerID"].split(".")[0])
        if not re.fullmatch(r"\d{5}[A-Za-z]{0,2}", code):
            service_lines += 1
        elif int(row["Quantity"]) > 0 and Decimal(row["UnitPrice"]) > 0:
            sold.add(code.upper())
            if code.upper() == "85123A" and row["InvoiceDate"] >= latest_date:
                latest_date, latest_name = row["InvoiceDate"], row["Description"]

    report = import_online_retail(path)
    again = import_online_retail(path)

    assert (lines, len(codes), len(customers)) == (541_909, 4_070, 4_372)
    assert report.lines_read == lines
    assert report.products.created == len(sold) == Product.objects.count()
    products = {c.upper() for c in codes if re.fullmatch(r"\d{5}[A-Za-z]{0,2}", c)}
    assert report.never_sold_codes == len(products - sold)
    assert report.customers_created == len(customers) == Customer.objects.count()
    non_product = report.skipped.total() - report.skipped["zero_price"]
    assert non_product == service_lines
    assert Product.objects.get(code="85123A").name == latest_name.strip()
    assert (again.products.created, again.products.changed) == (0, 0)
    assert (again.customers_created, again.customers_changed) == (0, 0)
