"""Measure the import of the Online Retail file against a bare read of it.

``make bench-import`` runs it on a fresh SQLite database under
var/bench-import. Figures are printed, never asserted: a bare parse of the
same file (gzip + csv, nothing kept) is the baseline measured in the same
run, and the ratio says what the importer's rules and writes cost on top.
"""

import csv
import gzip
import io
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from shop.importer import import_online_retail
from shop.models import Product


def _bare_read(path: Path) -> int:
    """Parse every line of the file and keep nothing; return the line count."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        next(reader)
        return sum(1 for _ in reader)


class Command(BaseCommand):
    help = "Time the import of the whole Online Retail file (run on an empty database)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args, path: Path, **options) -> None:
        if Product.objects.exists():
            raise CommandError(
                "the database already has products; run this on an empty one "
                "(make bench-import does)"
            )
        started = time.perf_counter()
        lines = _bare_read(path)
        bare = time.perf_counter() - started

        started = time.perf_counter()
        first = import_online_retail(path)
        first_seconds = time.perf_counter() - started

        started = time.perf_counter()
        second = import_online_retail(path)
        second_seconds = time.perf_counter() - started

        rows = [
            ("bare read (gzip + csv)", lines, bare),
            ("import, empty database", first.lines_read, first_seconds),
            ("import again, nothing changes", second.lines_read, second_seconds),
        ]
        self.stdout.write(f"file: {path.name}, database: {connection.vendor}")
        self.stdout.write(f"{'run':<32}{'lines':>10}{'seconds':>10}{'lines/s':>12}")
        for name, count, seconds in rows:
            self.stdout.write(
                f"{name:<32}{count:>10,}{seconds:>10.2f}{count / seconds:>12,.0f}"
            )
        self.stdout.write(
            f"import / bare read: {first_seconds / bare:.1f}x the time "
            f"(read and fold {first.read_seconds:.2f} s, save "
            f"{first.save_seconds:.2f} s); created "
            f"{first.products.created:,} products, {first.customers_created:,} "
            "customers"
        )
