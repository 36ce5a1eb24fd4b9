from django.db import models


class EmailDelivery(models.Model):
    """One email the shop means to send exactly once, found by its key."""

    key = models.CharField(max_length=120, unique=True)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=200)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "email deliveries"

    def __str__(self) -> str:
        return self.key
