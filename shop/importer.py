"""Import the UCI Online Retail file into the catalog and the customers.

``manage.py import_online_retail`` calls ``import_online_retail``; the order
replay (orders/replay.py) reads the same file through ``OnlineRetailFile``.
The file is streamed once and folded into one record per stock code and per
customer; only those records are kept in memory. The rules, with the figures
they give on the real file, are in docs/online-retail.md:

- A product is a stock code of five digits and up to two letters, upper-cased
  (111 codes of the real file are also written in lower case). Every other
  code (postage, discounts, fees, gift vouchers, ...) is skipped and counted
  by what it stands for.
- A sale line has Quantity > 0 and UnitPrice > 0. A product takes its name and
  price from its latest sale line (by InvoiceDate, later in the file on a
  tie); its description lists the other names seen on priced lines, so that
  search finds them. Lines priced 0 are stock-taking notes ("damaged", "?")
  and free items: they name nothing. A code with no sale line is not
  imported.
- Initial stock is the units of all sale lines of the code (so at least 1),
  enough for a replay of the whole year. It is written only when the product
  is created, never on a later run.
- A customer is one CustomerID ("17850.0" is "17850") with a user account
  ``customer-17850`` that cannot log in; its country is that of its latest
  line.

A second run writes nothing: rows are compared first and only new or changed
ones are upserted. Search index updates for those products are queued once
the transaction commits.
"""

import csv
import gzip
import io
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, NamedTuple

import redis
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Model
from kombu.exceptions import OperationalError
from tqdm import tqdm

from shop.models import Customer, Product
from shop.tasks import update_search_index_task

logger = logging.getLogger(__name__)

COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
)
PRODUCT_CODE = re.compile(r"\d{5}[A-Za-z]{0,2}")
# Stock codes that are not goods, by what the line stands for (upper case).
SERVICE_CODES = {
    "POST": "postage",
    "DOT": "postage",
    "C2": "carriage",
    "D": "discount",
    "M": "manual_adjustment",
    "B": "bad_debt_adjustment",
    "S": "samples",
    "BANK CHARGES": "bank_charges",
    "AMAZONFEE": "amazon_fee",
    "CRUK": "charity_commission",
    "PADS": "cushion_pads",
}
SERVICE_CODE_PREFIXES = {"GIFT_0001_": "gift_voucher", "DCGS": "dcgs_listing"}
CENT = Decimal("0.01")
# Rows per INSERT and per ``IN (...)`` list: far below the variable limit of
# either backend, and one statement never holds SQLite's write lock long.
BATCH_SIZE = 500
# Products per index task: 500 ids make a message of about 4 KB and take
# about 40 ms to index on SQLite, so a task that fails redoes little.
INDEX_CHUNK = 500
NAME_LENGTH = Product._meta.get_field("name").max_length
# How often (in lines) the progress bar is moved.
PROGRESS_EVERY = 10_000


class SourceFileError(ValueError):
    """The file is not an Online Retail file."""


class SourceLine(NamedTuple):
    invoice: str
    stock_code: str
    description: str
    quantity: int
    # "YYYY-MM-DD HH:MM:SS": as a string it sorts in time order.
    date: str
    price: Decimal
    # "17850", or "" when the line has no customer.
    customer: str
    country: str


def product_code(stock_code: str) -> str | None:
    """Return the product code of a StockCode, or None if it is no product."""
    return stock_code.upper() if PRODUCT_CODE.fullmatch(stock_code) else None


def skip_reason(stock_code: str) -> str:
    """Return why a StockCode that is not a product is skipped."""
    code = stock_code.upper()
    if code in SERVICE_CODES:
        return SERVICE_CODES[code]
    for prefix, reason in SERVICE_CODE_PREFIXES.items():
        if code.startswith(prefix):
            return reason
    return "other_code"


def customer_external_id(value: str) -> str:
    """Return "17850" for "17850.0" or "17850", and "" for no customer."""
    whole, _, fraction = value.strip().partition(".")
    if not whole and not fraction:
        return ""
    if not whole.isdigit() or fraction.strip("0"):
        raise ValueError(f"not a customer id: {value!r}")
    return whole


class OnlineRetailFile:
    """One Online Retail file (.csv or .csv.gz), read line by line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.malformed = 0
        self._raw: BinaryIO | None = None

    def position(self) -> int:
        """Return how many bytes of the file have been read so far."""
        return self._raw.tell() if self._raw is not None else 0

    def lines(self) -> Iterator[SourceLine]:
        """Yield the well-formed lines in file order; count the others."""
        with open(self.path, "rb") as raw:
            self._raw = raw
            binary = gzip.GzipFile(fileobj=raw) if self.path.suffix == ".gz" else raw
            with io.TextIOWrapper(binary, encoding="utf-8", newline="") as text:
                rows = csv.reader(text)
                columns = self._columns(next(rows, []))
                for row in rows:
                    try:
                        line = self._parse(columns(row))
                    except (ValueError, IndexError, InvalidOperation):
                        self.malformed += 1
                        continue
                    yield line

    def _columns(self, header: list[str]) -> itemgetter:
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise SourceFileError(
                f"{self.path} is not an Online Retail file: "
                f"no column {', '.join(missing)}"
            )
        return itemgetter(*(header.index(name) for name in COLUMNS))

    @staticmethod
    def _parse(values: tuple[str, ...]) -> SourceLine:
        invoice, code, description, quantity, date, price, customer, country = values
        return SourceLine(
            invoice=invoice.strip(),
            stock_code=code.strip(),
            description=" ".join(description.split()),
            quantity=int(quantity),
            date=date.strip(),
            price=Decimal(price),
            customer=customer_external_id(customer),
            country=country.strip(),
        )


@dataclass
class CatalogWrite:
    """What an upsert of products changed, and what became of their indexing."""

    created: int = 0
    changed: int = 0
    unchanged: int = 0
    product_ids: list[int] = field(default_factory=list)
    index_tasks: int = 0
    # Products whose index update could not be queued (broker down); the
    # beat-scheduled sweep finds them.
    index_left_to_sweep: int = 0

    def summary(self) -> list[str]:
        """Return the report as lines to print."""
        lines = [
            f"products: {self.created:,} created, {self.changed:,} changed, "
            f"{self.unchanged:,} unchanged"
        ]
        if self.index_left_to_sweep:
            lines.append(
                f"search index: broker unreachable, {self.index_left_to_sweep:,} "
                "products left to the beat-scheduled sweep "
                "(shop.tasks.reindex_stale_products_task)"
            )
        elif self.product_ids:
            lines.append(
                f"search index: {len(self.product_ids):,} products queued "
                f"({self.index_tasks} index tasks)"
            )
        return lines


@dataclass
class ImportReport:
    """Counts of one import, by what happened to each line, code and customer."""

    # Lines by kind: the sales and the cancellations feed products.
    used: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    without_customer: int = 0
    never_sold_codes: int = 0
    lower_case_codes: int = 0
    lower_case_lines: int = 0
    shared_names: int = 0
    products: CatalogWrite = field(default_factory=CatalogWrite)
    customers_created: int = 0
    customers_changed: int = 0
    customers_unchanged: int = 0
    multi_country_customers: int = 0
    users_created: int = 0
    read_seconds: float = 0.0
    save_seconds: float = 0.0

    @property
    def lines_read(self) -> int:
        return self.used.total() + self.skipped.total()

    def summary(self) -> list[str]:
        """Return the report as lines to print."""
        rate = self.lines_read / self.read_seconds if self.read_seconds else 0
        return [
            f"read {self.lines_read:,} lines in {self.read_seconds:.1f} s "
            f"({rate:,.0f} lines/s), saved in {self.save_seconds:.1f} s",
            f"used {self.used.total():,} lines:",
            *format_counts(self.used),
            f"skipped {self.skipped.total():,} lines:",
            *format_counts(self.skipped),
            f"lines without a customer: {self.without_customer:,} "
            "(used for products only)",
            f"codes never sold (no line with quantity and price above 0), not "
            f"imported: {self.never_sold_codes:,}",
            f"codes also written in lower case, merged: {self.lower_case_codes:,} "
            f"({self.lower_case_lines:,} lines)",
            f"names shared by several codes, kept apart: {self.shared_names:,}",
            *self.products.summary(),
            f"customers: {self.customers_created:,} created, "
            f"{self.customers_changed:,} changed, {self.customers_unchanged:,} "
            f"unchanged; {self.users_created:,} user accounts created",
            f"customers seen with more than one country (latest kept): "
            f"{self.multi_country_customers:,}",
        ]


def format_counts(counts: Counter[str]) -> list[str]:
    """Return one indented line per reason, the most frequent first."""
    return [f"  {reason:<28}{count:>10,}" for reason, count in counts.most_common()]


@dataclass(slots=True)
class _Code:
    """What the file says about one product code, folded line by line."""

    name: str = ""
    price: Decimal = Decimal(0)
    date: str = ""
    units: int = 0
    names: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Buyer:
    date: str
    country: str
    countries: set[str]


def import_online_retail(path: str | Path, *, progress: bool = False) -> ImportReport:
    """Create or update products and customers from an Online Retail file."""
    source = OnlineRetailFile(path)
    report = ImportReport()
    logger.info("online retail import started path=%s", source.path)

    started = time.monotonic()
    codes, buyers = _fold(source, report, progress)
    report.read_seconds = time.monotonic() - started

    started = time.monotonic()
    with transaction.atomic():
        products = _products(codes, report)
        report.products = save_products(products)
        _save_customers(buyers, report)
    report.save_seconds = time.monotonic() - started
    logger.info(
        "online retail import finished lines=%s products_created=%s "
        "products_changed=%s customers_created=%s duration_ms=%d",
        report.lines_read,
        report.products.created,
        report.products.changed,
        report.customers_created,
        (report.read_seconds + report.save_seconds) * 1000,
    )
    return report


def _fold(
    source: OnlineRetailFile, report: ImportReport, progress: bool
) -> tuple[dict[str, _Code], dict[str, _Buyer]]:
    """Read every line once into one record per product code and per buyer."""
    codes: dict[str, _Code] = {}
    buyers: dict[str, _Buyer] = {}
    lower_case: set[str] = set()
    bar = tqdm(
        total=source.size,
        unit="B",
        unit_scale=True,
        desc="import",
        file=sys.stderr,
        disable=not progress,
    )
    with bar:
        for count, line in enumerate(source.lines(), start=1):
            if count % PROGRESS_EVERY == 0:
                bar.update(source.position() - bar.n)
            _fold_buyer(line, buyers, report)

            code = product_code(line.stock_code)
            if code is None:
                report.skipped[skip_reason(line.stock_code)] += 1
                continue
            if code != line.stock_code:
                lower_case.add(code)
                report.lower_case_lines += 1
            record = codes.get(code)
            if record is None:
                record = codes[code] = _Code()
            if line.price <= 0:
                report.skipped["zero_price"] += 1
                continue
            if line.description:
                record.names.add(line.description)
            # Quantity 0 never occurs in the real file; it is no sale either.
            if line.quantity <= 0:
                report.used["cancellation"] += 1
                continue

            report.used["sale"] += 1
            record.units += line.quantity
            if line.date >= record.date:
                record.date = line.date
                record.price = line.price
                record.name = line.description or record.name
        bar.update(source.size - bar.n)
    if source.malformed:
        report.skipped["malformed"] = source.malformed
    report.lower_case_codes = len(lower_case)
    return codes, buyers


def _fold_buyer(
    line: SourceLine, buyers: dict[str, _Buyer], report: ImportReport
) -> None:
    if not line.customer:
        report.without_customer += 1
        return
    buyer = buyers.get(line.customer)
    if buyer is None:
        buyers[line.customer] = _Buyer(line.date, line.country, {line.country})
        return
    if line.date >= buyer.date:
        buyer.date = line.date
        buyer.country = line.country
    buyer.countries.add(line.country)


def _products(codes: dict[str, _Code], report: ImportReport) -> list[Product]:
    """Build the product rows of the codes that were sold."""
    products = []
    codes_by_name: dict[str, set[str]] = {}
    for code, record in sorted(codes.items()):
        if not record.date:
            report.never_sold_codes += 1
            continue
        name = record.name or code
        codes_by_name.setdefault(name, set()).add(code)
        products.append(
            Product(
                code=code,
                name=name[:NAME_LENGTH],
                description="; ".join(sorted(record.names - {name})),
                price=record.price.quantize(CENT, ROUND_HALF_UP),
                stock=record.units,
            )
        )
    report.shared_names = sum(1 for shared in codes_by_name.values() if len(shared) > 1)
    return products


def _save_customers(buyers: dict[str, _Buyer], report: ImportReport) -> None:
    """Create the missing user accounts, then upsert the customers."""
    User = get_user_model()
    usernames = {f"customer-{external_id}": external_id for external_id in buyers}
    existing = set(_existing(User, "username", usernames, []))
    User.objects.bulk_create(
        (
            User(
                username=username,
                email=f"{username}@customers.example",
                # An unusable password is a random marker, not a hash: cheap.
                password=make_password(None),
            )
            for username in sorted(usernames.keys() - existing)
        ),
        batch_size=BATCH_SIZE,
    )
    report.users_created = len(usernames) - len(existing)
    user_ids = {
        usernames[username]: values["pk"]
        for username, values in _existing(User, "username", usernames, ["pk"]).items()
    }

    customers = [
        Customer(
            external_id=external_id,
            user_id=user_ids[external_id],
            country=buyer.country,
        )
        for external_id, buyer in sorted(buyers.items())
    ]
    created, changed = upsert(
        Customer, customers, key="external_id", fields=["country"]
    )
    report.customers_created = len(created)
    report.customers_changed = len(changed)
    report.customers_unchanged = len(customers) - len(created) - len(changed)
    report.multi_country_customers = sum(
        1 for buyer in buyers.values() if len(buyer.countries) > 1
    )


def save_products(products: list[Product]) -> CatalogWrite:
    """Upsert products by code and queue their index updates after commit.

    Name, description and price follow the given rows; stock is written only
    when a product is created, so orders taken since the last run keep their
    effect.
    """
    created, changed = upsert(
        Product,
        products,
        key="code",
        fields=["name", "description", "price"],
        touch=["updated_at"],
    )
    result = CatalogWrite(
        created=len(created),
        changed=len(changed),
        unchanged=len(products) - len(created) - len(changed),
    )
    written = _existing(Product, "code", created + changed, ["pk"])
    result.product_ids = sorted(values["pk"] for values in written.values())
    if result.product_ids:
        transaction.on_commit(partial(queue_search_index, result))
    return result


def queue_search_index(result: CatalogWrite) -> None:
    """Queue index updates for the written products, in chunks of INDEX_CHUNK.

    A broker that cannot be reached does not fail the import: the products
    stay stale in the index until the beat-scheduled sweep
    (``reindex_stale_products_task``) indexes them.
    """
    ids = result.product_ids
    for start in range(0, len(ids), INDEX_CHUNK):
        try:
            update_search_index_task.delay(ids[start : start + INDEX_CHUNK])
        except (OperationalError, redis.ConnectionError) as error:
            result.index_left_to_sweep = len(ids) - start
            logger.warning(
                "search index updates not queued products=%s error=%s",
                result.index_left_to_sweep,
                error,
            )
            return
        result.index_tasks += 1
    logger.debug(
        "search index updates queued products=%s tasks=%s", len(ids), result.index_tasks
    )


def upsert[M: Model](
    model: type[M],
    rows: list[M],
    *,
    key: str,
    fields: list[str],
    touch: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """Insert new rows and update those whose fields differ; return both keys.

    Rows equal to what the table holds are not written at all. The write is
    an upsert on ``key``, so a row inserted meanwhile by another process is
    updated rather than failing the batch. ``touch`` fields (``auto_now``)
    are written along with changed rows.
    """
    by_key = {getattr(row, key): row for row in rows}
    existing = _existing(model, key, by_key, fields)
    created = [value for value in by_key if value not in existing]
    changed = [
        value
        for value, stored in existing.items()
        if any(getattr(by_key[value], name) != stored[name] for name in fields)
    ]
    model._default_manager.bulk_create(
        [by_key[value] for value in created + changed],
        batch_size=BATCH_SIZE,
        update_conflicts=True,
        unique_fields=[key],
        update_fields=[*fields, *touch],
    )
    return created, changed


def _existing(
    model: type[Model], key: str, keys: Iterable[str], fields: list[str]
) -> dict[str, dict]:
    """Return the stored ``fields`` of the rows with these keys, by key."""
    keys = sorted(keys)
    found = {}
    for start in range(0, len(keys), BATCH_SIZE):
        chunk = keys[start : start + BATCH_SIZE]
        for values in model._default_manager.filter(**{f"{key}__in": chunk}).values(
            key, *fields
        ):
            found[values[key]] = values
    return found
