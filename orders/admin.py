"""Admin for orders and their sales records; orders change only through services."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.models import Order, OrderLine, SalesRecord
from orders.services import cancel_order
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
