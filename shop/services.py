"""Catalog, stock and customer writes done on the request side.

Stock is taken and returned inside the checkout's transaction; a product
change queues its search index update, and a sign-up its welcome email,
for after the commit.
"""

from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from notifications.tasks import send_welcome_email_task
from shop.models import Customer, Product
from shop.tasks import update_search_index_task


class UnknownProductError(Exception):
    def __init__(self, codes: list[str]) -> None:
        super().__init__(f"unknown products: {', '.join(codes)}")
        self.codes = codes


class OutOfStockError(Exception):
    def __init__(self, shortages: dict[str, int]) -> None:
        described = ", ".join(
            f"{code} ({left} left)" for code, left in shortages.items()
        )
        super().__init__(f"not enough stock: {described}")
        self.shortages = shortages


def lock_products(codes: list[str]) -> dict[str, Product]:
    """Lock the products' rows, always in primary-key order, and return them.

    Two checkouts that share products take their locks in the same order, so
    they queue behind each other instead of deadlocking. Must run inside a
    transaction.
    """
    products = {
        product.code: product
        for product in Product.objects.select_for_update()
        .filter(code__in=codes, is_active=True)
        .order_by("pk")
    }
    missing = sorted(set(codes) - products.keys())
    if missing:
        raise UnknownProductError(missing)
    return products


def reserve_stock(
    products: Mapping[str, Product], quantities: Mapping[str, int]
) -> None:
    """Take units from locked products, or raise without taking any."""
    shortages = {
        code: products[code].stock
        for code, quantity in quantities.items()
        if products[code].stock < quantity
    }
    if shortages:
        raise OutOfStockError(shortages)
    for code, quantity in quantities.items():
        product = products[code]
        Product.objects.filter(pk=product.pk).update(stock=F("stock") - quantity)
        product.stock -= quantity


def release_stock(quantities: Mapping[int, int]) -> None:
    """Put units back on products, by product id (cancelled order lines)."""
    for product_id in sorted(quantities):
        Product.objects.filter(pk=product_id).update(
            stock=F("stock") + quantities[product_id]
        )


def change_product(product: Product, **changes: object) -> Product:
    """Save changes to a product and queue its search index update."""
    for field, value in changes.items():
        setattr(product, field, value)
    product.save(update_fields=[*changes, "updated_at"])
    update_search_index_task.delay_on_commit([product.pk])
    return product


def register_customer(
    *, username: str, email: str, password: str, country: str = ""
) -> Customer:
    """Create a user and their customer profile, and queue the welcome email.

    The welcome goes out NOTIFICATIONS_WELCOME_DELAY_SECONDS after the
    commit, on the emails queue; Flower shows it with its ETA meanwhile.
    """
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username, email=email, password=password
        )
        customer = Customer.objects.create(user=user, country=country)
        send_welcome_email_task.apply_async_on_commit(
            (user.pk,), countdown=settings.NOTIFICATIONS_WELCOME_DELAY_SECONDS
        )
    return customer


def customer_for(user: AbstractBaseUser) -> Customer:
    """Return the user's customer profile, creating it on their first checkout."""
    customer, _ = Customer.objects.get_or_create(user=user)
    return customer
