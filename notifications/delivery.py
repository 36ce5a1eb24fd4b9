"""Sending email once, however often the message asking for it arrives.

Workers acknowledge late, so a message can be delivered twice (a worker
died after sending, a redelivery after the visibility timeout). Each email
has a key; the first worker to hold the key's row sends and marks it sent,
and every later delivery finds it sent and stops.
"""

import logging
import smtplib

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.utils import timezone

from notifications.models import EmailDelivery

logger = logging.getLogger(__name__)

# Errors worth another try: the SMTP server refused the connection, timed
# out or dropped the session. Anything else (a bad address, a template
# error) will not get better by retrying. Email tasks name these in
# autoretry_for.
SMTP_TRANSIENT = (ConnectionError, TimeoutError, smtplib.SMTPServerDisconnected)


def send_once(key: str, message: EmailMultiAlternatives) -> bool:
    """Send the message unless the email with this key was sent; True if sent.

    The row lock is held while the SMTP server accepts the message, so a
    second delivery running at the same moment waits and then sees it sent.
    If the worker dies after the server accepted the message but before the
    commit, the redelivered task sends it again: SMTP offers no way to ask
    whether a message was received, so this is at least once at that edge.
    """
    with transaction.atomic():
        delivery, _ = EmailDelivery.objects.select_for_update().get_or_create(
            key=key,
            defaults={"to": ", ".join(message.to), "subject": message.subject},
        )
        if delivery.sent_at is not None:
            logger.info("email already sent key=%s", key)
            return False
        message.extra_headers.setdefault("X-Shop-Email-Key", key)
        message.send()
        delivery.sent_at = timezone.now()
        delivery.save(update_fields=["sent_at"])
    logger.info("email sent key=%s to=%s", key, delivery.to)
    return True


def was_sent(key: str) -> bool:
    """Return whether the email with this key has been sent."""
    return EmailDelivery.objects.filter(key=key, sent_at__isnull=False).exists()
