"""Order consumers run by workers after an order commits or is cancelled,
and the subscription billing that beat starts.

Each order task takes an order id, reads the committed row, and is safe to
run twice: emails go through notifications.delivery.send_once, the analytics
record is one row per order. A cancellation's message also carries its
number and the (product id, units) it took, which the row does not keep.
Subscription charges are safe to run twice too (orders/billing.py).
"""

from datetime import date

from celery import shared_task
from celery.utils.log import get_task_logger

from notifications.delivery import SMTP_TRANSIENT
from orders import analytics, billing, emails
from orders.payments import GatewayUnavailableError

logger = get_task_logger(__name__)


@shared_task(autoretry_for=SMTP_TRANSIENT)
def send_order_confirmation_task(order_id: int, resend: str = "") -> None:
    emails.send_order_confirmation(order_id, resend)


@shared_task(autoretry_for=SMTP_TRANSIENT)
def send_order_cancellation_task(
    order_id: int, number: int, cancelled: list[tuple[int, int]]
) -> None:
    emails.send_order_cancellation(order_id, number, cancelled)


@shared_task
def record_order_analytics_task(order_id: int) -> None:
    analytics.record_order(order_id)


# Only an unanswered gateway call is worth retrying, under the same key; a
# decline is recorded on the invoice and the task ends normally.
@shared_task(autoretry_for=(GatewayUnavailableError,))
def charge_subscription_task(subscription_id: int, period_start: str) -> None:
    """Charge one billing period; ``period_start`` is an ISO date (UTC)."""
    billing.charge_subscription(subscription_id, date.fromisoformat(period_start))


@shared_task
def bill_due_subscriptions_task() -> None:
    # A period still waiting in the queue, or failed for good, is sent again
    # by the next run: harmless, since its charge is idempotent.
    periods = billing.due_periods()
    for subscription_id, period_start in periods:
        charge_subscription_task.delay(subscription_id, period_start.isoformat())
    logger.info("billing run sent charges=%s", len(periods))
