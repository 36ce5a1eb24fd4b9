from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from notifications.models import EmailDelivery


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(admin.ModelAdmin):
    """The send-once ledger, read-only: a row edited here could send twice."""

    list_display = ["key", "to", "subject", "sent_at", "created_at"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "to", "subject"]
    date_hierarchy = "created_at"

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
