"""The analytics consumer: one sales record per order, for reporting."""

import logging

from django.db.models import Count, F, Sum

from orders.models import Order, SalesRecord

logger = logging.getLogger(__name__)


def record_order(order_id: int) -> bool:
    """Write the order's sales record unless it exists; True if written."""
    order = Order.objects.select_related("customer").filter(pk=order_id).first()
    if order is None:
        logger.info("sales record skipped order_id=%s gone", order_id)
        return False
    # The order as placed: a cancellation that got in before this worker ran
    # has already lowered the order's total, but not what was sold.
    totals = order.lines.aggregate(
        lines=Count("pk"),
        units=Sum("quantity"),
        revenue=Sum(F("quantity") * F("unit_price")),
    )
    _, created = SalesRecord.objects.get_or_create(
        order=order,
        defaults={
            "country": order.customer.country,
            "day": order.created_at.date(),
            "lines": totals["lines"],
            "units": totals["units"] or 0,
            "revenue": totals["revenue"] or 0,
        },
    )
    return created
