"""The demo's own catalog and accounts, for a shop that runs without the data set.

``manage.py load_demo_catalog`` upserts shop/fixtures/demo_catalog.csv the
way the Online Retail import upserts its products (``save_products``: new
products get their stock, known ones keep it, index updates are queued after
commit). ``manage.py seed_demo`` creates the demo accounts, whose password is
public on purpose.
"""

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from shop.importer import CatalogWrite, save_products
from shop.models import Customer, Product

DEMO_CATALOG = Path(__file__).resolve().parent / "fixtures" / "demo_catalog.csv"
# Printed by seed_demo and written in the README: never use it outside a demo.
DEMO_PASSWORD = "shop-demo"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    email: str
    is_customer: bool
    is_staff: bool


DEMO_ACCOUNTS = (
    DemoAccount("alice", "alice@example.com", is_customer=True, is_staff=False),
    DemoAccount("bob", "bob@example.com", is_customer=True, is_staff=False),
    DemoAccount("admin", "admin@example.com", is_customer=False, is_staff=True),
)


def load_demo_catalog(path: Path = DEMO_CATALOG) -> CatalogWrite:
    """Create or update the demo products listed in a catalog CSV file."""
    with open(path, newline="", encoding="utf-8") as file:
        products = [
            Product(
                code=row["code"],
                name=row["name"],
                description=row["description"],
                price=Decimal(row["price"]),
                stock=int(row["stock"]),
            )
            for row in csv.DictReader(file)
        ]
    with transaction.atomic():
        return save_products(products)


def seed_demo_accounts() -> list[DemoAccount]:
    """Create or repair the demo accounts; running it again changes nothing."""
    User = get_user_model()
    with transaction.atomic():
        for account in DEMO_ACCOUNTS:
            user, _ = User.objects.get_or_create(username=account.username)
            user.email = account.email
            user.is_active = True
            user.is_staff = user.is_superuser = account.is_staff
            # Hashing is slow on purpose; skip it when the password is right.
            if not user.check_password(DEMO_PASSWORD):
                user.set_password(DEMO_PASSWORD)
            user.save()
            if account.is_customer:
                Customer.objects.get_or_create(
                    user=user, defaults={"country": "United Kingdom"}
                )
    return list(DEMO_ACCOUNTS)
