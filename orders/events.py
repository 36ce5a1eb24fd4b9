"""The order events and the consumers each one fans out to.

An event is one message per consumer, each routed to its own queue
(shop/queues.py), so a slow or stopped consumer delays none of the others.
The messages go through the transactional outbox (shop/outbox.py): written
in the order's transaction, published once it commits, and published by the
sweep later if the broker was down. A rolled-back checkout sends nothing, and
a committed one loses nothing. Redis pub/sub is not used for this: it keeps
nothing for a consumer that is down.

With ``ORDERS_SIDE_EFFECTS = "inline"`` the same functions run in the
request right after the commit instead; the checkout benchmark compares the
two.
"""

from celery import Signature
from django.conf import settings
from django.db import transaction

from orders.models import Order
from orders.tasks import (
    record_order_analytics_task,
    send_order_cancellation_task,
    send_order_confirmation_task,
)
from shop import outbox
from shop.tasks import record_stock_movements_task, update_search_index_task


def order_completed(order: Order) -> None:
    """Publish order.completed for an order created in the open transaction."""
    lines = list(order.lines.values_list("product_id", "quantity"))
    _publish(
        [
            send_order_confirmation_task.si(order.pk),
            record_stock_movements_task.si(
                f"order:{order.pk}",
                [[product, -quantity] for product, quantity in lines],
            ),
            record_order_analytics_task.si(order.pk),
            update_search_index_task.si(sorted(product for product, _ in lines)),
        ]
    )


def order_cancelled(order: Order, number: int, quantities: dict[int, int]) -> None:
    """Publish order.cancelled for cancellation ``number`` of an order.

    ``quantities`` holds the units this cancellation took, by product id; the
    email lists exactly those, and the number keeps each cancellation's email
    and stock movements apart from the order's other cancellations.
    """
    changes = [[product, units] for product, units in sorted(quantities.items())]
    _publish(
        [
            send_order_cancellation_task.si(order.pk, number, changes),
            record_stock_movements_task.si(
                f"order:{order.pk}:cancel:{number}", changes
            ),
            update_search_index_task.si(sorted(quantities)),
        ]
    )


def _publish(messages: list[Signature]) -> None:
    if settings.ORDERS_SIDE_EFFECTS == "inline":
        # The benchmark's baseline: the work itself, in this process, with no
        # outbox row. A process that dies after the commit loses it, which a
        # baseline can afford; robust, so one failing consumer stops none of
        # the others.
        for message in messages:
            transaction.on_commit(message.apply, robust=True)
        return
    outbox.send_on_commit(messages)
