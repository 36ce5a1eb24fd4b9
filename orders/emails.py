"""The emails an order sends, rendered from the committed order."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from notifications.delivery import send_once
from orders.models import Order

logger = logging.getLogger(__name__)


def confirmation_key(order_id: int) -> str:
    return f"order-confirmation:{order_id}"


def cancellation_key(order_id: int) -> str:
    return f"order-cancellation:{order_id}"


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


def _message(order: Order, template: str, subject: str) -> EmailMultiAlternatives:
    context = {"order": order, "lines": order.lines.all()}
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


def send_order_confirmation(order_id: int) -> bool:
    """Send the order's confirmation, once; True if this call sent it."""
    order = _load(order_id)
    if order is None:
        return False
    message = _message(order, "confirmation", f"Your order {order.pk} is confirmed")
    return send_once(confirmation_key(order.pk), message)


def send_order_cancellation(order_id: int) -> bool:
    """Tell the customer the order was cancelled, once; True if this call sent it."""
    order = _load(order_id)
    if order is None:
        return False
    message = _message(order, "cancellation", f"Your order {order.pk} was cancelled")
    return send_once(cancellation_key(order.pk), message)
