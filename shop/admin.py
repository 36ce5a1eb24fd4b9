"""Admin for the catalog, customers, stock ledger, search index, dead letters."""

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from shop import deadletters
from shop.models import (
    Customer,
    DeadLetter,
    OutboxMessage,
    Product,
    SearchEntry,
    StockMovement,
)
from shop.services import change_product


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows that only workers write: editing one here would falsify it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        return False

    def has_delete_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        return False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "price", "stock", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["updated_at"]

    def save_model(
        self, request: HttpRequest, obj: Product, form: ModelForm, change: bool
    ) -> None:
        if not change:
            # A new product has no index entry; the beat sweep indexes it.
            super().save_model(request, obj, form, change)
            return
        # Through the service, so the search index hears of the change.
        change_product(obj, **{name: getattr(obj, name) for name in form.changed_data})


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["user", "email", "country", "external_id"]
    list_filter = ["country"]
    search_fields = ["user__username", "user__email", "external_id"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ["booked_at", "reference", "product", "quantity", "stock_at_booking"]
    search_fields = ["reference", "product__code", "product__name"]
    list_select_related = ["product"]
    date_hierarchy = "booked_at"


@admin.register(SearchEntry)
class SearchEntryAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "price", "in_stock", "indexed_at"]
    list_filter = ["in_stock"]
    search_fields = ["code", "name"]


class ReplayedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return [("waiting", "Waiting"), ("replayed", "Replayed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "waiting":
            return queryset.filter(replayed_at__isnull=True)
        if self.value() == "replayed":
            return queryset.filter(replayed_at__isnull=False)
        return queryset


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = [
        "failed_at",
        "task_name",
        "queue",
        "attempts",
        "exception",
        "replayed_at",
    ]
    list_filter = [ReplayedFilter, "queue", "task_name", "failed_at"]
    search_fields = ["task_name", "task_id", "exception"]
    actions = ["replay"]

    def has_delete_permission(
        self, request: HttpRequest, obj: Model | None = None
    ) -> bool:
        # Purging a dead letter after reading it is the one edit allowed.
        return request.user.has_perm("shop.delete_deadletter")

    @admin.action(description="Replay the selected dead letters")
    def replay(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        sent = [
            task_id for letter in queryset if (task_id := deadletters.replay(letter))
        ]
        self.message_user(
            request, f"{len(sent)} dead letters replayed.", messages.SUCCESS
        )


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "task_name", "queue", "sent_at", "attempts"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter), "queue", "task_name"]
    search_fields = ["task_name", "task_id", "last_error"]
