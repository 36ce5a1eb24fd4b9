"""Load the demo catalog written for this project (not the real data set)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from shop.demo import DEMO_CATALOG, load_demo_catalog


class Command(BaseCommand):
    help = (
        "Create or update the small demo catalog (shop/fixtures/demo_catalog.csv). "
        "Stock is set only for new products; running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--path",
            type=Path,
            default=DEMO_CATALOG,
            help="a catalog CSV with code, name, description, price and stock",
        )

    def handle(self, *args, path: Path, **options) -> None:
        result = load_demo_catalog(path)
        for line in result.summary():
            self.stdout.write(line)
