"""Online Retail files for tests: small ones written by a test, or the real one."""

import csv
import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

HEADER = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def line(
    invoice: str,
    code: str,
    quantity: int,
    *,
    date: str = "2010-12-01 08:26:00",
    price: str = "2.50",
    customer: str = "17850.0",
    description: str = "",
    country: str = "United Kingdom",
) -> list[str]:
    """Return one line of the file; the description defaults to a product name."""
    return [
        invoice,
        code,
        description or f"PRODUCT {code.upper()}",
        str(quantity),
        date,
        price,
        customer,
        country,
    ]


def write_online_retail(path: Path, lines: list[list[str]]) -> Path:
    """Write lines under the file's header, gzipped when the name ends in .gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        writer.writerows(lines)
    return path


def real_online_retail_csv() -> str:
    """Return the real file named by ONLINE_RETAIL_CSV, or skip the test."""
    if not settings.ONLINE_RETAIL_CSV:
        pytest.skip("ONLINE_RETAIL_CSV is not set")
    return settings.ONLINE_RETAIL_CSV


def read_real_lines(path: str) -> Iterator[dict[str, str]]:
    """Yield the real file's lines as dicts, read with the csv module alone."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="", encoding="utf-8") as file:
        yield from csv.DictReader(file)
