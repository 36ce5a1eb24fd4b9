"""Catalog, customers, stock and the search index of the storefront."""

from django.conf import settings
from django.db import models


class Customer(models.Model):
    """A buyer; imported customers keep the id they had in the source data."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer"
    )
    external_id = models.CharField(max_length=20, unique=True, null=True, blank=True)
    country = models.CharField(max_length=60, blank=True)

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def email(self) -> str:
        return self.user.email


class Product(models.Model):
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    # Units free to sell. Checkout takes them under a row lock; the
    # constraint is the last line of defence against overselling.
    stock = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(stock__gte=0), name="product_stock_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(price__gte=0), name="product_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class StockMovement(models.Model):
    """One change of a product's stock, booked after the fact by a worker.

    The reference names what caused it (``order:42``, ``order:42:cancel:1``);
    the unique pair makes booking the same change twice a no-op.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    reference = models.CharField(max_length=60)
    quantity = models.IntegerField()
    stock_at_booking = models.IntegerField()
    booked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["reference", "product"], name="stock_movement_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.product_id} {self.quantity:+d}"


class SearchEntry(models.Model):
    """What the search index holds for one product, written only by tasks.

    Search pages read names, prices and availability from here, so a change
    shows in search once its index task has run. The full-text part lives
    beside this table: a generated tsvector column on PostgreSQL, an FTS5
    table kept in step by triggers on SQLite (migration 0002).
    """

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, primary_key=True, related_name="search_entry"
    )
    code = models.CharField(max_length=20)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    in_stock = models.BooleanField()
    indexed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "search entries"

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class DeadLetter(models.Model):
    """A task that gave up: what it was, why it failed, until it is replayed."""

    task_name = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64)
    queue = models.CharField(max_length=60, blank=True)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    exception = models.TextField()
    traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField()
    failed_at = models.DateTimeField(auto_now=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-failed_at", "-pk"]
        indexes = [models.Index(fields=["replayed_at", "failed_at"])]

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}"


class AlertState(models.Model):
    """Whether an alert is firing, so it is sent once per episode."""

    name = models.CharField(max_length=60, unique=True)
    active = models.BooleanField(default=False)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} {'active' if self.active else 'quiet'}"


class OutboxMessage(models.Model):
    """A task message written in the transaction that causes it, until relayed.

    Rows are written beside the order they describe and published once that
    transaction commits (shop/outbox.py); a row the broker did not take stays
    unsent until the sweep publishes it. The task id is fixed when the row is
    written, so a message published twice carries the same id both times.
    """

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    kwargs = models.JSONField(default=dict)
    queue = models.CharField(max_length=60)
    task_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Null until the broker has taken the message.
    sent_at = models.DateTimeField(null=True, blank=True)
    # Relays that claimed the row and could not publish it, and the reason
    # the latest one gave.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            # The sweep reads unsent rows (sent_at IS NULL) oldest first; the
            # purge reads sent rows by sent_at. One index serves both.
            models.Index(
                fields=["sent_at", "created_at"], name="shop_outbox_sent_created"
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_name} {self.task_id}"
