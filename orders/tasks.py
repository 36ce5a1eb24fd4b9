"""Order consumers run by workers after an order commits or is cancelled.

Each task takes an order id, reads the committed row, and is safe to run
twice: emails go through notifications.delivery.send_once, the analytics
record is one row per order. A cancellation's message also carries its
number and the (product id, units) it took, which the row does not keep.
"""

import smtplib

from celery import shared_task
from celery.utils.log import get_task_logger

from orders import analytics, emails

logger = get_task_logger(__name__)

# A refused connection or a 4xx reply from the SMTP server passes; anything
# else (a bad address, a template error) will not get better by retrying.
SMTP_TRANSIENT = (ConnectionError, TimeoutError, smtplib.SMTPServerDisconnected)


@shared_task(autoretry_for=SMTP_TRANSIENT)
def send_order_confirmation_task(order_id: int) -> None:
    emails.send_order_confirmation(order_id)


@shared_task(autoretry_for=SMTP_TRANSIENT)
def send_order_cancellation_task(
    order_id: int, number: int, cancelled: list[tuple[int, int]]
) -> None:
    emails.send_order_cancellation(order_id, number, cancelled)


@shared_task
def record_order_analytics_task(order_id: int) -> None:
    analytics.record_order(order_id)
