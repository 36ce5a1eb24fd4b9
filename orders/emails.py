"""The emails an order sends, rendered from the committed order."""

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from notifications.delivery import send_once
from orders.models import Order
from shop.models import Product

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CancelledLine:
    product: Product
    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


def confirmation_key(order_id: int) -> str:
    return f"order-confirmation:{order_id}"


def cancellation_key(order_id: int, number: int) -> str:
    return f"order-cancellation:{order_id}:{number}"


def _load(order_id: int) -> Order | None:
    order = (
        Order.objects.select_related("customer__user")
        .prefetch_related("lines__product")
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        logger.info("order email skipped order_id=%s gone", order_id)
    return order


def _message(
    order: Order, template: str, subject: str, **context: object
) -> EmailMultiAlternatives:
    context = {"order": order, "lines": order.lines.all(), **context}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"orders/email/{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[order.customer.email or f"{order.customer}@customers.invalid"],
    )
    message.attach_alternative(
        render_to_string(f"orders/email/{template}.html", context), "text/html"
    )
    return message


def send_order_confirmation(order_id: int, resend: str = "") -> bool:
    """Send the order's confirmation, once; True if this call sent it.

    A resend the customer asked for has its own key (``resend`` names the
    request), so it is sent once too, however often its message arrives.
    """
    order = _load(order_id)
    if order is None:
        return False
    # The order as placed, even if a cancellation got in before this email.
    ordered_total = sum(
        (line.ordered_amount for line in order.lines.all()), Decimal("0.00")
    )
    message = _message(
        order,
        "confirmation",
        f"Your order {order.pk} is confirmed",
        ordered_total=ordered_total,
    )
    key = confirmation_key(order.pk) + (f":resend:{resend}" if resend else "")
    return send_once(key, message)


def send_order_cancellation(
    order_id: int, number: int, cancelled: list[tuple[int, int]]
) -> bool:
    """Tell the customer what cancellation ``number`` took, once; True if sent.

    ``cancelled`` holds that cancellation's (product id, units): the order's
    lines keep only the sum of all its cancellations.
    """
    order = _load(order_id)
    if order is None:
        return False
    lines = {line.product_id: line for line in order.lines.all()}
    taken = [
        CancelledLine(lines[product].product, units, lines[product].unit_price)
        for product, units in cancelled
    ]
    # Only the latest cancellation can have emptied the order.
    whole = (
        order.status == Order.Status.CANCELLED and number == order.cancellation_count
    )
    subject = (
        f"Your order {order.pk} was cancelled"
        if whole
        else f"Part of your order {order.pk} was cancelled"
    )
    message = _message(order, "cancellation", subject, cancelled=taken, whole=whole)
    return send_once(cancellation_key(order.pk, number), message)
