"""Charging subscriptions one billing period at a time, in the workers.

Beat runs ``bill_due_subscriptions_task``, which sends one charge message
per due period (``due_periods``); ``charge_subscription`` takes the money
for one period and is safe however often, and however concurrently, the
message for that period arrives. The README explains the guarantees.
"""

import logging
import time
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from orders.models import Invoice, Subscription
from orders.payments import GatewayUnavailableError, PaymentDeclinedError, get_gateway

logger = logging.getLogger(__name__)

# Skip reasons that no message sent by the billing run should meet: someone
# sent a charge for a period that is not the subscription's next one.
_UNEXPECTED_SKIPS = {"not_current_period", "not_due"}


def utc_today() -> date:
    """Return today's date in UTC, the calendar billing periods are kept in."""
    # timezone.now() is UTC (USE_TZ). The local date would move a period's
    # start by an hour across daylight saving time, and its key with it.
    return timezone.now().date()


def charge_key(subscription_id: int, period_start: date) -> str:
    """Return the gateway's idempotency key for one period of a subscription."""
    return f"sub:{subscription_id}:period:{period_start.isoformat()}"


def _decline_retry_cutoff() -> datetime:
    hours = settings.ORDERS_BILLING_DECLINE_RETRY_HOURS
    return timezone.now() - timedelta(hours=hours)


def due_periods(today: date | None = None) -> list[tuple[int, date]]:
    """Return (subscription id, period start) for every period due a charge.

    A period is due when it is the subscription's oldest unpaid one and has
    started, and either the subscription is active and the period's invoice
    was not declined in the last ORDERS_BILLING_DECLINE_RETRY_HOURS, or the
    invoice is PENDING: an outcome still unknown is settled even after a
    cancellation, because the money may already have been taken.
    """
    today = today or utc_today()
    current_invoice = Invoice.objects.filter(
        subscription=OuterRef("pk"), period_start=OuterRef("current_period_start")
    )
    needs_no_charge = current_invoice.filter(
        Q(status=Invoice.Status.PAID)
        | Q(status=Invoice.Status.FAILED, last_attempt_at__gt=_decline_retry_cutoff())
    )
    unsettled = current_invoice.filter(status=Invoice.Status.PENDING)
    return list(
        Subscription.objects.filter(current_period_start__lte=today)
        .filter(
            Q(status=Subscription.Status.ACTIVE) & ~Exists(needs_no_charge)
            | Exists(unsettled)
        )
        .order_by("pk")
        .values_list("pk", "current_period_start")
    )


def _skip_reason(
    subscription: Subscription,
    invoice: Invoice | None,
    period_start: date,
    today: date,
) -> str | None:
    """Return why the period must not be charged now, or None to charge it."""
    if invoice is not None and invoice.status == Invoice.Status.PAID:
        return "already_paid"
    # A PENDING invoice is settled even after a cancellation: an earlier
    # attempt may have been charged, and only asking again under its key
    # tells. A cancellation stops the periods not yet claimed.
    pending = invoice is not None and invoice.status == Invoice.Status.PENDING
    if subscription.status != Subscription.Status.ACTIVE and not pending:
        return "cancelled"
    if period_start != subscription.current_period_start:
        return "not_current_period"
    if period_start > today:
        return "not_due"
    if (
        invoice is not None
        and invoice.status == Invoice.Status.FAILED
        and invoice.last_attempt_at is not None
        and invoice.last_attempt_at > _decline_retry_cutoff()
    ):
        return "declined_recently"
    return None


def _log_skip(subscription_id: int, period_start: date, reason: str) -> None:
    level = logging.WARNING if reason in _UNEXPECTED_SKIPS else logging.INFO
    logger.log(
        level,
        "charge skipped subscription_id=%s period_start=%s reason=%s",
        subscription_id,
        period_start,
        reason,
    )


def charge_subscription(subscription_id: int, period_start: date) -> Invoice | None:
    """Charge one period of a subscription once, however often this is called.

    Return the period's invoice, or None if the period gets none. A decline
    is an outcome, recorded on the invoice (FAILED), not an error. Raise
    GatewayUnavailableError when the gateway did not answer: the invoice
    stays PENDING, and the next call learns the outcome under the same key.
    """
    today = utc_today()
    started = time.monotonic()

    # Step 1, a transaction of its own: claim the period with a PENDING
    # invoice, committed before the gateway hears of the charge. Every charge
    # the gateway makes under the period's key then has an invoice naming it.
    # A worker killed after the capture leaves that invoice PENDING, and the
    # redelivered message, a retry or the next billing run asks again under
    # the same key and records the first charge; the gateway never captures
    # twice. The other order (charge, then write the invoice) would leave
    # money taken and no trace of it here if the worker died in between and
    # its message was not delivered again.
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        invoice = Invoice.objects.filter(
            subscription=subscription, period_start=period_start
        ).first()
        if reason := _skip_reason(subscription, invoice, period_start, today):
            _log_skip(subscription_id, period_start, reason)
            return invoice
        if invoice is None:
            # The unique constraint on (subscription, period_start) is what
            # makes the claim once; the lock above only makes a clash rare.
            invoice, _ = Invoice.objects.get_or_create(
                subscription=subscription,
                period_start=period_start,
                defaults={
                    "period_end": subscription.period_after(period_start),
                    "amount": subscription.amount,
                },
            )

    # Step 2: charge and record the outcome in one transaction, with the
    # subscription's row locked and then the invoice's (the order every path
    # that takes both keeps). The locks are held across the gateway call: a
    # second delivery of the message waits here and then finds the invoice
    # PAID, and a cancellation waits for the charge or comes before it. Were
    # two calls to reach the gateway anyway, the key would answer both with
    # one charge. The price is one connection held for a gateway round trip,
    # bounded by the task's time limit; a worker that dies holding the locks
    # loses its connection, and the database rolls back and releases them.
    # (SQLite ignores FOR UPDATE; its IMMEDIATE transactions serialize every
    # writer, which gives the same order.)
    unavailable: GatewayUnavailableError | None = None
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if reason := _skip_reason(subscription, invoice, period_start, today):
            _log_skip(subscription_id, period_start, reason)
            return invoice

        invoice.attempts += 1
        invoice.last_attempt_at = timezone.now()
        try:
            reference = get_gateway().charge(
                amount=invoice.amount,
                card_number=subscription.card_number,
                idempotency_key=charge_key(subscription.pk, period_start),
            )
        except PaymentDeclinedError as error:
            invoice.status = Invoice.Status.FAILED
            invoice.failure_reason = error.reason[:200]
        except GatewayUnavailableError as error:
            # Recorded, then raised after the commit so the task retries.
            invoice.status = Invoice.Status.PENDING
            invoice.failure_reason = f"gateway unavailable: {error}"[:200]
            unavailable = error
        else:
            invoice.status = Invoice.Status.PAID
            invoice.payment_reference = reference
            invoice.failure_reason = ""
            invoice.paid_at = invoice.last_attempt_at
            # In the invoice's transaction: the period moves on exactly when
            # it is recorded as paid, never without it, never twice.
            subscription.current_period_start = invoice.period_end
            subscription.save(update_fields=["current_period_start"])
        invoice.save(
            update_fields=[
                "status",
                "payment_reference",
                "failure_reason",
                "attempts",
                "last_attempt_at",
                "paid_at",
            ]
        )

    if unavailable is not None:
        logger.warning(
            "charge outcome unknown invoice_id=%s subscription_id=%s "
            "period_start=%s attempts=%s error=%r",
            invoice.pk,
            subscription_id,
            period_start,
            invoice.attempts,
            unavailable,
        )
        raise unavailable
    if invoice.status == Invoice.Status.FAILED:
        logger.warning(
            "charge declined invoice_id=%s subscription_id=%s period_start=%s "
            "reason=%s attempts=%s",
            invoice.pk,
            subscription_id,
            period_start,
            invoice.failure_reason,
            invoice.attempts,
        )
        return invoice
    logger.info(
        "invoice paid invoice_id=%s subscription_id=%s period_start=%s amount=%s "
        "reference=%s attempts=%s duration_ms=%d",
        invoice.pk,
        subscription_id,
        period_start,
        invoice.amount,
        invoice.payment_reference,
        invoice.attempts,
        (time.monotonic() - started) * 1000,
    )
    return invoice
