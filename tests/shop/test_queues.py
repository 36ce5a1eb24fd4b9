"""The queue and route tables, and what happens to a route that is wrong."""

import pytest
from celery.exceptions import QueueNotFound

from shop.celery import app
from shop.queues import QUEUES, ROUTES, check_routes


def test_every_route_names_a_declared_queue():
    check_routes(QUEUES, ROUTES)

    assert set(ROUTES.values()) <= set(QUEUES)


def test_a_route_to_an_undeclared_queue_is_refused():
    with pytest.raises(ValueError, match="emial"):
        check_routes(QUEUES, {**ROUTES, "orders.tasks.x_task": "emial"})


def test_sending_to_an_undeclared_queue_raises_instead_of_creating_it(broker):
    with pytest.raises(QueueNotFound):
        app.send_task("orders.tasks.send_order_confirmation_task", [1], queue="emial")

    assert not broker.exists("emial")


@pytest.mark.django_db
def test_every_routed_task_exists():
    app.loader.import_default_modules()

    assert set(ROUTES) <= set(app.tasks)
