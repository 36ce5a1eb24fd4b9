"""The demo's own catalog and accounts, for a shop that runs without the data set.

``manage.py load_demo_catalog`` upserts shop/fixtures/demo_catalog.csv the
way the Online Retail import upserts its products (``save_products``: new
products get their stock, known ones keep it, index updates are queued after
commit). ``manage.py seed_demo`` creates the demo accounts, whose password is
public on purpose, and their subscriptions.
"""

import csv
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from orders import services as orders
from orders.models import Subscription
from orders.payments import CARD_APPROVED, CARD_DECLINED
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


@dataclass(frozen=True)
class DemoSubscription:
    username: str
    plan: str
    amount: Decimal
    card_number: str
    # Days from today (UTC) to the first period: 0 is billed by the first
    # billing run, which beat sends as it starts.
    starts_in_days: int


DEMO_SUBSCRIPTIONS = (
    DemoSubscription("alice", "Tea of the month", Decimal("12.00"), CARD_APPROVED, 0),
    DemoSubscription("alice", "Gift wrap club", Decimal("4.50"), CARD_APPROVED, 9),
    # Declined, to show a FAILED invoice and its WARNING line.
    DemoSubscription("bob", "Tea of the month", Decimal("12.00"), CARD_DECLINED, 0),
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


def seed_demo_subscriptions() -> list[Subscription]:
    """Start the demo subscriptions that do not exist yet; return all of them."""
    # Billing periods are UTC dates; timezone.now() is in UTC.
    today = timezone.now().date()
    subscriptions = []
    with transaction.atomic():
        for demo in DEMO_SUBSCRIPTIONS:
            customer = Customer.objects.get(user__username=demo.username)
            subscription = customer.subscriptions.filter(plan=demo.plan).first()
            if subscription is None:
                subscription = orders.subscribe(
                    customer=customer,
                    plan=demo.plan,
                    amount=demo.amount,
                    card_number=demo.card_number,
                    start=today + timedelta(days=demo.starts_in_days),
                )
            subscriptions.append(subscription)
    return subscriptions
