"""Admin for orders, sales records, subscriptions and invoices.

Orders and subscriptions change only through services; invoices only in the
billing workers.
"""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.models import Invoice, Order, OrderLine, SalesRecord, Subscription
from orders.services import cancel_order, cancel_subscription
from shop.admin import ReadOnlyAdmin


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ["product", "quantity", "cancelled_quantity", "unit_price", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(
        self, request: HttpRequest, obj: Order | None = None
    ) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "status", "total", "created_at", "source_invoice"]
    list_filter = ["status", "created_at"]
    search_fields = [
        "=id",
        "customer__user__username",
        "payment_reference",
        "source_invoice",
    ]
    list_select_related = ["customer__user"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    actions = ["cancel_orders"]
    # The replayed data set holds hundreds of thousands of orders; skip the
    # second, unfiltered COUNT(*) on every change list page.
    show_full_result_count = False

    @admin.action(description="Cancel the selected orders", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        # Each cancels what remains of its order; one with nothing left is skipped.
        cancelled = sum(cancel_order(order) is not None for order in queryset)
        self.message_user(
            request, f"Cancelled {cancelled} order(s).", level=messages.SUCCESS
        )

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.change_order")


@admin.register(SalesRecord)
class SalesRecordAdmin(ReadOnlyAdmin):
    list_display = ["order", "day", "country", "lines", "units", "revenue"]
    list_filter = ["country"]
    search_fields = ["=order__id", "country"]
    date_hierarchy = "day"


class InvoiceInline(admin.TabularInline):
    model = Invoice
    fields = [
        "period_start",
        "amount",
        "status",
        "attempts",
        "payment_reference",
        "failure_reason",
        "paid_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(
        self, request: HttpRequest, obj: Subscription | None = None
    ) -> bool:
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer",
        "plan",
        "amount",
        "status",
        "current_period_start",
        "card_last4",
    ]
    list_filter = ["status", "interval"]
    search_fields = ["=id", "customer__user__username", "plan"]
    list_select_related = ["customer__user"]
    # The card number is a test card of the simulated gateway; a real shop
    # would hold only the provider's token, and show the last four digits.
    exclude = ["card_number"]
    readonly_fields = ["card_last4"]
    inlines = [InvoiceInline]
    actions = ["cancel_subscriptions"]

    @admin.action(
        description="Cancel the selected subscriptions", permissions=["cancel"]
    )
    def cancel_subscriptions(
        self, request: HttpRequest, queryset: QuerySet[Subscription]
    ) -> None:
        cancelled = sum(cancel_subscription(subscription) for subscription in queryset)
        self.message_user(
            request,
            f"Cancelled {cancelled} subscription(s).",
            level=messages.SUCCESS,
        )

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.change_subscription")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "subscription",
        "period_start",
        "amount",
        "status",
        "attempts",
        "payment_reference",
        "last_attempt_at",
    ]
    list_filter = ["status", "period_start"]
    search_fields = ["=id", "=subscription__id", "payment_reference"]
    list_select_related = ["subscription"]
    date_hierarchy = "period_start"
