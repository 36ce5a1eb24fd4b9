"""The demo mailbox page: only when enabled, and never trusting the HTML."""

import mailbox
from email.message import EmailMessage

import pytest
from django.urls import reverse


@pytest.fixture
def caught(tmp_path, settings):
    """A Maildir holding one message, as the SMTP catcher would store it."""
    settings.NOTIFICATIONS_MAILBOX_DIR = tmp_path / "mailbox"
    settings.NOTIFICATIONS_MAILBOX_PAGE = True
    message = EmailMessage()
    message["Subject"] = "Your order 7 is confirmed"
    message["From"] = "shop@example.com"
    message["To"] = "ada@example.com"
    message["Date"] = "Thu, 03 Dec 2026 10:00:00 +0000"
    message["X-Shop-Email-Key"] = "order-confirmation:7"
    message.set_content("Thank you for your order 7.")
    message.add_alternative(
        '<p>Thank you</p><script>alert("x")</script>', subtype="html"
    )
    return mailbox.Maildir(settings.NOTIFICATIONS_MAILBOX_DIR).add(message)


def test_mailbox_lists_date_recipient_and_subject(client, caught):
    response = client.get(reverse("notifications:mailbox"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "3 Dec 2026" in page
    assert "ada@example.com" in page
    assert reverse("notifications:message", args=[caught]) in page
    assert "Your order 7 is confirmed" in page


def test_message_shows_text_and_html_only_escaped_in_a_sandbox(client, caught):
    response = client.get(reverse("notifications:message", args=[caught]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Thank you for your order 7." in page
    assert "order-confirmation:7" in page
    assert '<iframe class="mail-html" sandbox=""' in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_unknown_message_is_not_found(client, caught):
    response = client.get(reverse("notifications:message", args=["nope"]))

    assert response.status_code == 404


def test_empty_mailbox_says_so(client, settings, tmp_path):
    settings.NOTIFICATIONS_MAILBOX_DIR = tmp_path / "never-created"
    settings.NOTIFICATIONS_MAILBOX_PAGE = True

    response = client.get(reverse("notifications:mailbox"))

    assert "No mail yet." in response.content.decode()


@pytest.mark.parametrize("url", ["/mail/", "/mail/some-key/"])
def test_mailbox_pages_are_not_found_when_disabled(client, caught, settings, url):
    settings.NOTIFICATIONS_MAILBOX_PAGE = False

    response = client.get(url)

    assert response.status_code == 404


def test_footer_links_the_tools_only_in_debug(client, caught, settings):
    settings.DEBUG = True
    with_tools = client.get(reverse("notifications:mailbox")).content.decode()
    settings.DEBUG = False

    without_tools = client.get(reverse("notifications:mailbox")).content.decode()

    assert 'href="http://127.0.0.1:5555/"' in with_tools
    assert 'href="/mail/">Caught mail' in with_tools
    assert "5555" not in without_tools
    assert ">Caught mail</a>" not in without_tools
