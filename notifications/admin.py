from django.contrib import admin

from notifications.models import EmailDelivery
from shop.admin import ReadOnlyAdmin


@admin.register(EmailDelivery)
class EmailDeliveryAdmin(ReadOnlyAdmin):
    """The send-once ledger, read-only: a row edited here could send twice."""

    list_display = ["key", "to", "subject", "sent_at", "created_at"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "to", "subject"]
    date_hierarchy = "created_at"
