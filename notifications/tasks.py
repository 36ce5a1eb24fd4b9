"""Account emails sent by the emails worker.

The welcome email is queued with a countdown at sign-up
(shop.services.register_customer): the customer is welcomed a few minutes
later, once they have had a look around, and the sign-up page never waits
for SMTP.
"""

from celery import shared_task

from notifications import emails
from notifications.delivery import SMTP_TRANSIENT


@shared_task(autoretry_for=SMTP_TRANSIENT)
def send_welcome_email_task(user_id: int) -> None:
    emails.send_welcome(user_id)
