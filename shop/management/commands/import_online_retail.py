"""Import products and customers from the UCI Online Retail file."""

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop.importer import SourceFileError, import_online_retail


class Command(BaseCommand):
    help = (
        "Create or update products and customers from the UCI Online Retail file "
        "(.csv or .csv.gz); running it again changes nothing. The rules are in "
        "docs/online-retail.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="online_retail.csv or online_retail.csv.gz")
        parser.add_argument(
            "--no-progress", action="store_true", help="do not show a progress bar"
        )

    def handle(self, *args, path: str, no_progress: bool, **options) -> None:
        try:
            report = import_online_retail(
                path, progress=not no_progress and sys.stderr.isatty()
            )
        except (OSError, SourceFileError) as error:
            raise CommandError(str(error)) from error
        for line in report.summary():
            self.stdout.write(line)
