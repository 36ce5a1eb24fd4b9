"""Replay the invoices of the UCI Online Retail file as orders."""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.replay import replay_orders
from shop.importer import SourceFileError


class Command(BaseCommand):
    help = (
        "Place and cancel the invoices of the Online Retail file in date order "
        "through the checkout, as their customers (import the file first). "
        "Replaying the same invoices again creates nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="online_retail.csv or online_retail.csv.gz")
        parser.add_argument(
            "--limit", type=int, metavar="N", help="replay at most N invoices"
        )
        parser.add_argument(
            "--days",
            type=int,
            metavar="D",
            help="replay only the invoices of the file's first D days",
        )
        parser.add_argument(
            "--rate", type=float, metavar="R", help="replay at most R invoices a second"
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="do not show a progress bar"
        )

    def handle(self, *args, path: str, no_progress: bool, **options) -> None:
        for name in ("limit", "days", "rate"):
            if options[name] is not None and options[name] < 0:
                raise CommandError(f"--{name} cannot be negative")
        try:
            report = replay_orders(
                path,
                limit=options["limit"],
                days=options["days"],
                rate=options["rate"],
                progress=not no_progress and sys.stderr.isatty(),
            )
        except (OSError, SourceFileError) as error:
            raise CommandError(str(error)) from error
        for line in report.summary():
            self.stdout.write(line)
