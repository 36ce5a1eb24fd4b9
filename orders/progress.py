"""What the workers have done for an order so far, read for the order page.

Each step is the visible result of one consumer of the order's events
(orders/events.py), so the page shows the background work catching up. The
cancellation steps cover all of an order's cancellations together.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Sum

from notifications.delivery import was_sent
from orders.emails import cancellation_key, confirmation_key
from orders.models import Order, SalesRecord
from shop.models import SearchEntry, StockMovement


@dataclass(frozen=True)
class Step:
    label: str
    done: bool


def background_work(order: Order) -> list[Step]:
    """Return the order's background steps and whether each has happened."""
    product_ids = list(order.lines.values_list("product_id", flat=True))
    steps = [
        Step("Confirmation email sent", was_sent(confirmation_key(order.pk))),
        Step("Stock movements booked", _booked(f"order:{order.pk}", product_ids)),
        Step(
            "Sales analytics recorded", SalesRecord.objects.filter(order=order).exists()
        ),
        Step("Search index updated", _indexed_since(order.created_at, product_ids)),
    ]
    if order.cancellation_count:
        numbers = range(1, order.cancellation_count + 1)
        cancelled_ids = list(
            order.lines.filter(cancelled_quantity__gt=0).values_list(
                "product_id", flat=True
            )
        )
        steps += [
            Step(
                "Cancellation email sent",
                all(was_sent(cancellation_key(order.pk, n)) for n in numbers),
            ),
            Step("Stock return booked", _returns_booked(order, numbers)),
            Step(
                "Search index updated after cancelling",
                _indexed_since(order.cancelled_at, cancelled_ids),
            ),
        ]
    return steps


def _booked(reference: str, product_ids: list[int]) -> bool:
    # The inventory worker books each line in its own transaction, so a
    # partly booked order is visible for a moment; only all lines count.
    booked = StockMovement.objects.filter(reference=reference).count()
    return booked == len(product_ids)


def _returns_booked(order: Order, numbers: range) -> bool:
    # Each cancellation books its units under its own reference; a line
    # cancelled in two steps has two movements, so units are compared.
    booked = StockMovement.objects.filter(
        reference__in=[f"order:{order.pk}:cancel:{n}" for n in numbers]
    ).aggregate(units=Sum("quantity"))["units"]
    cancelled = order.lines.aggregate(units=Sum("cancelled_quantity"))["units"]
    return booked == cancelled


def _indexed_since(moment: datetime, product_ids: list[int]) -> bool:
    fresh = SearchEntry.objects.filter(product__in=product_ids, indexed_at__gte=moment)
    return fresh.count() == len(product_ids)
