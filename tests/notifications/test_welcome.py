"""Sign-up answers at once; the welcome email follows after its countdown."""

import time
from datetime import datetime

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from notifications.mailcatcher import read_mailbox
from tests.support import Worker, queued_messages, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

FORM = {
    "username": "carol",
    "email": "carol@example.com",
    "password1": "a long enough password",
    "password2": "a long enough password",
}


def _welcomes(mailbox):
    return [m for m in read_mailbox(mailbox) if m["To"] == "carol@example.com"]


def test_sign_up_queues_the_welcome_email_with_a_countdown(client, broker, settings):
    settings.NOTIFICATIONS_WELCOME_DELAY_SECONDS = 300
    before = time.time()

    response = client.post(reverse("signup"), FORM)

    assert response.status_code == 302
    user = get_user_model().objects.get(username="carol")
    assert user.customer.pk
    [message] = queued_messages(broker, "emails")
    assert message["headers"]["task"] == "notifications.tasks.send_welcome_email_task"
    eta = datetime.fromisoformat(message["headers"]["eta"]).timestamp()
    assert before + 299 <= eta <= time.time() + 301


def test_welcome_email_arrives_once_after_its_countdown(
    client, broker, settings, mail_catcher
):
    settings.NOTIFICATIONS_WELCOME_DELAY_SECONDS = 3
    worker = Worker(["emails"], name="welcome").start().wait_ready()
    try:
        signed_up = time.time()
        client.post(reverse("signup"), FORM)

        time.sleep(1)
        assert _welcomes(mail_catcher) == []
        [mail] = wait_for(lambda: _welcomes(mail_catcher), timeout=20)
    finally:
        worker.stop()

    assert time.time() - signed_up >= 3
    assert mail["Subject"] == "Welcome to the demo shop"
