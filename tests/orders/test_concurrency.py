"""Checkouts racing for the same stock, from several threads at once.

Each thread has its own database connection, so on PostgreSQL these are
real concurrent transactions taking row locks.
"""

import threading
from collections import Counter

import pytest
from django.db import connection

from orders.models import Order
from orders.payments import CARD_APPROVED, SimulatedGateway
from orders.services import CheckoutError, LineRequest, place_order
from tests.factories import CustomerFactory, ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _race(jobs):
    """Run each job in its own thread, started together; return outcomes."""
    barrier = threading.Barrier(len(jobs))
    outcomes = []

    def run(job):
        try:
            barrier.wait()
            outcomes.append(job())
        except CheckoutError as error:
            outcomes.append(error.code)
        except Exception as error:  # noqa: BLE001 - the test reports it
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _buyer(customer, lines, key):
    def buy():
        place_order(
            customer=customer,
            lines=[LineRequest(code, quantity) for code, quantity in lines],
            card_number=CARD_APPROVED,
            idempotency_key=key,
        )
        return "placed"

    return buy


def test_concurrent_checkouts_sell_exactly_the_last_units():
    product = ProductFactory(stock=5)
    customers = CustomerFactory.create_batch(12)

    outcomes = _race(
        [_buyer(customer, [(product.code, 1)], "last-units") for customer in customers]
    )

    assert Counter(outcomes) == {"placed": 5, "out_of_stock": 7}
    product.refresh_from_db()
    assert product.stock == 0
    assert Order.objects.count() == 5


def test_carts_locking_the_same_products_in_opposite_order_do_not_deadlock():
    first, second = ProductFactory(stock=500), ProductFactory(stock=500)
    customers = CustomerFactory.create_batch(10)
    jobs = [
        _buyer(
            customer,
            [(first.code, 1), (second.code, 1)]
            if number % 2
            else [(second.code, 1), (first.code, 1)],
            "cart",
        )
        for number, customer in enumerate(customers)
    ]

    outcomes = _race(jobs)

    assert outcomes == ["placed"] * 10
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.stock, second.stock) == (490, 490)


def test_a_double_submitted_checkout_creates_one_order_and_one_authorization():
    product = ProductFactory(stock=10)
    customer = CustomerFactory()
    gateway = SimulatedGateway()
    before = gateway.authorization_count()

    outcomes = _race([_buyer(customer, [(product.code, 2)], "same-form")] * 4)

    assert outcomes == ["placed"] * 4
    assert Order.objects.filter(customer=customer).count() == 1
    assert gateway.authorization_count() - before == 1
    product.refresh_from_db()
    assert product.stock == 8
