"""Orders, their lines, the analytics record written after each one, and
subscriptions with the invoice of each billing period."""

import calendar
from datetime import date
from decimal import Decimal

from django.db import models

from shop.models import Customer, Product


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "PLACED", "Placed"
        CANCELLED = "CANCELLED", "Cancelled"

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders"
    )
    # CANCELLED once nothing remains; a partly cancelled order stays PLACED.
    status = models.CharField(max_length=10, choices=Status, default=Status.PLACED)
    # What remains to be paid: the lines' amounts after their cancelled units.
    # What was ordered stays on the lines (quantity, unit_price).
    total = models.DecimalField(max_digits=12, decimal_places=2)
    # Sent by the client once per checkout attempt; the same key again returns
    # this order instead of charging a second time.
    idempotency_key = models.CharField(max_length=80)
    payment_reference = models.CharField(max_length=80)
    # The invoice number when the order was replayed from the real data set.
    source_invoice = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the latest cancellation, whole or partial, was applied.
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The cancellations applied so far: the n-th is number n, which keys its
    # email and names its stock movements, so each is done once downstream.
    cancellation_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "idempotency_key"], name="order_idempotency_key"
            ),
            models.CheckConstraint(
                condition=models.Q(total__gte=0), name="order_total_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    # Units ordered; units cancelled since are counted apart, never taken off.
    quantity = models.PositiveIntegerField()
    cancelled_quantity = models.PositiveIntegerField(default=0)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "product"], name="order_line_once"
            ),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="order_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    cancelled_quantity__gte=0,
                    cancelled_quantity__lte=models.F("quantity"),
                ),
                name="order_line_cancelled_within_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.cancelled_quantity

    @property
    def amount(self) -> Decimal:
        """Return what the remaining units cost; the order's total sums these."""
        return self.unit_price * self.remaining_quantity

    @property
    def ordered_amount(self) -> Decimal:
        return self.unit_price * self.quantity


class SalesRecord(models.Model):
    """One row per order for reporting, written by the analytics consumer."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="sales")
    country = models.CharField(max_length=60)
    day = models.DateField()
    lines = models.PositiveIntegerField()
    units = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=12, decimal_places=2)
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"sales of order {self.order_id}"


class Subscription(models.Model):
    """A plan a customer pays for every month, charged by the billing run."""

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE", "Active"
        CANCELLED = "CANCELLED", "Cancelled"

    class Interval(models.TextChoices):
        MONTHLY = "MONTHLY", "Monthly"

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.CharField(max_length=100)
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    interval = models.CharField(
        max_length=10, choices=Interval, default=Interval.MONTHLY
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.ACTIVE)
    # The first period's start. Its day of the month anchors every later
    # period, so a plan started on 31 January renews on 28 February and then
    # on 31 March, not on the 28th for ever.
    started_on = models.DateField()
    # The first day (a UTC date) of the oldest period not yet paid; due once
    # that day has come. Only a paid invoice moves it on, in the same
    # transaction (orders/billing.py).
    current_period_start = models.DateField()
    # A test card number, because the gateway is simulated. A real provider
    # gives the shop a token for a saved card; a card number must never be
    # stored outside a PCI DSS compliant vault.
    card_number = models.CharField(max_length=19)
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(
                fields=["status", "current_period_start"], name="subscription_due"
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="subscription_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"subscription {self.pk} ({self.plan})"

    @property
    def card_last4(self) -> str:
        return self.card_number[-4:]

    def period_after(self, period_start: date) -> date:
        """Return the start of the period that follows the one starting then."""
        # year * 12 + month - 1 counts months from year 0; one more is the next.
        year, month_index = divmod(period_start.year * 12 + period_start.month, 12)
        month = month_index + 1
        last_day = calendar.monthrange(year, month)[1]
        return date(year, month, min(self.started_on.day, last_day))


class Invoice(models.Model):
    """What one billing period of a subscription costs, and how paying it went.

    One row per subscription and period (the constraint is what makes a
    period's charge happen once). The row exists, PENDING, before the
    gateway is asked for the money; see orders/billing.py for why.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        PAID = "PAID", "Paid"
        FAILED = "FAILED", "Failed"

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="invoices"
    )
    period_start = models.DateField()
    # The next period's first day; this period ends the day before.
    period_end = models.DateField()
    # The subscription's amount when the period was claimed: every attempt,
    # and every retry under the same idempotency key, asks for this much.
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    # PENDING also while a charge's outcome is unknown (the gateway did not
    # answer, a worker died): the next attempt asks the gateway again under
    # the same key and learns it.
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    # The gateway's charge reference, once PAID.
    payment_reference = models.CharField(max_length=80, blank=True)
    # Why the latest attempt did not pay: the decline reason, or the error.
    failure_reason = models.CharField(max_length=200, blank=True)
    # Gateway calls whose outcome was recorded. A call cut short by a killed
    # worker is not counted; its charge is found by the next one.
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "period_start"], name="invoice_once_per_period"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="PAID") | ~models.Q(payment_reference=""),
                name="invoice_paid_has_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"invoice {self.pk} ({self.period_start})"
