"""Checkout and cancellation: the work a customer waits for.

``place_order`` does only what the customer must see succeed before the
page answers (validate, authorize payment, reserve stock, create the order),
in one transaction. Everything else is published as ``order.completed``
after the commit (orders/events.py) and done by workers. ``cancel_order``
returns the stock of some or all units in one transaction the same way, and
publishes ``order.cancelled``. ``subscribe`` and ``cancel_subscription``
start and stop a subscription; the workers charge it (orders/billing.py).
"""

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from orders import billing, events
from orders.models import Order, OrderLine, Subscription
from orders.payments import (
    GatewayUnavailableError,
    PaymentDeclinedError,
    get_gateway,
    normalize_card_number,
)
from orders.tasks import send_order_confirmation_task
from shop import services as stock
from shop.models import Customer

logger = logging.getLogger(__name__)


class CheckoutError(Exception):
    """A checkout the customer can fix; ``code`` is stable for API clients."""

    code = "invalid"
    status = 400


class InvalidOrderError(CheckoutError):
    code = "invalid_order"


class UnknownProductError(CheckoutError):
    code = "unknown_product"


class OutOfStockError(CheckoutError):
    code = "out_of_stock"
    status = 409


class InvalidCardError(CheckoutError):
    code = "invalid_card"


class PaymentUnavailable(CheckoutError):
    code = "payment_unavailable"
    status = 503


class PaymentDeclined(CheckoutError):
    code = "payment_declined"
    status = 402


class CancellationError(Exception):
    """A cancellation that does not fit what remains on the order."""

    code = "invalid_cancellation"
    status = 409


@dataclass(frozen=True)
class LineRequest:
    product_code: str
    quantity: int


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    created: bool


@dataclass(frozen=True)
class CancellationResult:
    order: Order
    # The cancellation's number on its order: 1 for the first, and so on.
    number: int
    # The units this cancellation took, by product code.
    quantities: dict[str, int]


def _merge_lines(lines: Iterable[LineRequest]) -> dict[str, int]:
    """Sum quantities per product and check them; raise InvalidOrderError."""
    quantities: dict[str, int] = {}
    for line in lines:
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int):
            raise InvalidOrderError(
                f"quantity of {line.product_code} is not a whole number"
            )
        if line.quantity <= 0:
            raise InvalidOrderError(
                f"quantity of {line.product_code} must be at least 1"
            )
        quantities[line.product_code] = (
            quantities.get(line.product_code, 0) + line.quantity
        )
    if not quantities:
        raise InvalidOrderError("the order has no lines")
    if len(quantities) > settings.ORDERS_MAX_LINES:
        raise InvalidOrderError(
            f"an order holds at most {settings.ORDERS_MAX_LINES} products"
        )
    for code, quantity in quantities.items():
        if quantity > settings.ORDERS_MAX_LINE_QUANTITY:
            raise InvalidOrderError(
                f"quantity of {code} is above the limit of "
                f"{settings.ORDERS_MAX_LINE_QUANTITY} per order"
            )
    return quantities


_DECLINE_MESSAGES = {
    "card_declined": "The card was declined. Please use another card.",
    "insufficient_funds": (
        "The card was declined for insufficient funds. Please use another card."
    ),
}


def _decline_message(reason: str) -> str:
    return _DECLINE_MESSAGES.get(
        reason, f"The payment was not authorized ({reason}). Please use another card."
    )


def place_order(
    *,
    customer: Customer,
    lines: Iterable[LineRequest],
    card_number: str,
    idempotency_key: str,
    source_invoice: str = "",
) -> CheckoutResult:
    """Authorize, reserve and create an order in one transaction, or change nothing.

    The same ``idempotency_key`` from the same customer returns the order it
    first created, without a second authorization.
    """
    if not idempotency_key or len(idempotency_key) > 80:
        raise InvalidOrderError("an idempotency key of 1 to 80 characters is required")
    quantities = _merge_lines(lines)
    try:
        card_number = normalize_card_number(card_number)
    except ValueError as error:
        raise InvalidCardError(str(error)) from error
    started = time.monotonic()
    gateway = get_gateway()
    authorization = ""
    try:
        with transaction.atomic():
            # The customer's row lock makes a double-submitted form wait for
            # the first submission, then find its order below.
            Customer.objects.select_for_update().filter(pk=customer.pk).first()
            existing = Order.objects.filter(
                customer=customer, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                return CheckoutResult(existing, created=False)

            try:
                products = stock.lock_products(list(quantities))
                stock.reserve_stock(products, quantities)
            except stock.UnknownProductError as error:
                raise UnknownProductError(str(error)) from error
            except stock.OutOfStockError as error:
                raise OutOfStockError(str(error)) from error
            total = sum(
                (
                    products[code].price * quantity
                    for code, quantity in quantities.items()
                ),
                Decimal("0.00"),
            )
            try:
                authorization = gateway.authorize(
                    amount=total,
                    card_number=card_number,
                    # The order's key stops a double submission (customer lock,
                    # unique constraint); the gateway's key covers this one
                    # attempt, so an attempt that rolled back and voided its
                    # authorization never lends it to the next.
                    idempotency_key=f"checkout:{customer.pk}:{uuid.uuid4().hex}",
                )
            except PaymentDeclinedError as error:
                raise PaymentDeclined(_decline_message(error.reason)) from error
            except GatewayUnavailableError as error:
                raise PaymentUnavailable(
                    "The payment provider did not answer; nothing was charged. "
                    "Please try again in a moment."
                ) from error

            order = Order.objects.create(
                customer=customer,
                total=total,
                idempotency_key=idempotency_key,
                payment_reference=authorization,
                source_invoice=source_invoice,
            )
            OrderLine.objects.bulk_create(
                OrderLine(
                    order=order,
                    product=products[code],
                    quantity=quantity,
                    unit_price=products[code].price,
                )
                for code, quantity in quantities.items()
            )
            events.order_completed(order)
    except IntegrityError:
        # Only a concurrent checkout with the same key gets here (the
        # customer lock normally prevents it): its order is the answer.
        if authorization:
            gateway.void(authorization)
        existing = Order.objects.filter(
            customer=customer, idempotency_key=idempotency_key
        ).first()
        if existing is None:
            raise
        return CheckoutResult(existing, created=False)
    except BaseException:
        if authorization:
            gateway.void(authorization)
        raise
    logger.info(
        "order placed order_id=%s customer_id=%s lines=%s total=%s duration_ms=%d",
        order.pk,
        customer.pk,
        len(quantities),
        total,
        (time.monotonic() - started) * 1000,
    )
    return CheckoutResult(order, created=True)


def _units_to_cancel(
    order: Order, lines: Mapping[str, OrderLine], quantities: Mapping[str, int] | None
) -> dict[str, int]:
    """Check the requested units against what remains; raise CancellationError."""
    if quantities is None:
        return {
            code: line.remaining_quantity
            for code, line in lines.items()
            if line.remaining_quantity
        }
    if not quantities:
        raise CancellationError(f"the cancellation of order {order.pk} names no lines")
    for code, units in quantities.items():
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise CancellationError(
                f"units of {code} to cancel must be a whole number of at least 1"
            )
        line = lines.get(code)
        if line is None:
            raise CancellationError(f"order {order.pk} has no line for {code}")
        if units > line.remaining_quantity:
            raise CancellationError(
                f"cannot cancel {units} of {code} on order {order.pk}: "
                f"{line.remaining_quantity} remain"
            )
    return dict(quantities)


def cancel_order(
    order: Order, quantities: Mapping[str, int] | None = None
) -> CancellationResult | None:
    """Cancel units of a placed order and return their stock, in one transaction.

    ``quantities`` maps product codes to units; None cancels everything that
    remains. Return None if nothing remained; raise CancellationError, having
    changed nothing, if the quantities are not on the order.
    """
    with transaction.atomic():
        # The order's row lock serializes cancellations of one order, so two
        # of them never both take the same remaining units or the same number.
        order = Order.objects.select_for_update().get(pk=order.pk)
        lines = {
            line.product.code: line for line in order.lines.select_related("product")
        }
        cancelled = _units_to_cancel(order, lines, quantities)
        if not cancelled:
            return None

        for code, units in cancelled.items():
            lines[code].cancelled_quantity += units
        OrderLine.objects.bulk_update(
            [lines[code] for code in cancelled], ["cancelled_quantity"]
        )
        by_product = {
            lines[code].product_id: units for code, units in cancelled.items()
        }
        stock.release_stock(by_product)
        order.total = sum((line.amount for line in lines.values()), Decimal("0.00"))
        order.cancellation_count += 1
        order.cancelled_at = timezone.now()
        if not any(line.remaining_quantity for line in lines.values()):
            order.status = Order.Status.CANCELLED
        order.save(
            update_fields=["status", "total", "cancellation_count", "cancelled_at"]
        )
        events.order_cancelled(order, order.cancellation_count, by_product)

    # A partial cancellation keeps the authorization: the capture (not
    # modelled here) would take the reduced total. Only an order with
    # nothing left releases it.
    if order.status == Order.Status.CANCELLED:
        get_gateway().void(order.payment_reference)
    logger.info(
        "order cancellation applied order_id=%s number=%s units=%s total=%s status=%s",
        order.pk,
        order.cancellation_count,
        sum(cancelled.values()),
        order.total,
        order.status,
    )
    return CancellationResult(order, order.cancellation_count, cancelled)


def subscribe(
    *,
    customer: Customer,
    plan: str,
    amount: Decimal,
    card_number: str,
    start: date | None = None,
) -> Subscription:
    """Start a monthly subscription; its first period is due on ``start``.

    ``start`` is a UTC date, today by default. Nothing is charged here: the
    billing run charges every period once its day has come.
    """
    try:
        card_number = normalize_card_number(card_number)
    except ValueError as error:
        raise InvalidCardError(str(error)) from error
    start = start or billing.utc_today()
    subscription = Subscription.objects.create(
        customer=customer,
        plan=plan,
        amount=amount,
        card_number=card_number,
        started_on=start,
        current_period_start=start,
    )
    logger.info(
        "subscription started subscription_id=%s customer_id=%s amount=%s start=%s",
        subscription.pk,
        customer.pk,
        amount,
        start,
    )
    return subscription


def cancel_subscription(subscription: Subscription) -> bool:
    """Stop renewing a subscription; return False if it was already cancelled.

    The periods not yet claimed by a charge are never charged. The row lock
    waits for a charge in progress; a period whose charge has an unknown
    outcome (a PENDING invoice) is still settled, since the gateway may have
    taken the money already.
    """
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status == Subscription.Status.CANCELLED:
            return False
        subscription.status = Subscription.Status.CANCELLED
        subscription.cancelled_at = timezone.now()
        subscription.save(update_fields=["status", "cancelled_at"])
    logger.info("subscription cancelled subscription_id=%s", subscription.pk)
    return True


def resend_confirmation(order: Order, requested_at: datetime) -> None:
    """Queue the order's confirmation again, ahead of the bulk email queue.

    Order confirmations normally wait their turn on ``emails``, which a
    replay or a sale can fill with thousands of messages; the customer who
    asks for a resend is looking at the page now, so it goes to
    ``critical``. Requests in the same minute share a key: a double click
    sends one email.
    """
    send_order_confirmation_task.apply_async(
        (order.pk, requested_at.strftime("%Y%m%d%H%M")), queue="critical"
    )
