"""Orders, their lines, and the analytics record written after each one."""

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
