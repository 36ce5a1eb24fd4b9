"""The demo's mailbox: what the SMTP catcher received, for a person to read.

Served only while NOTIFICATIONS_MAILBOX_PAGE is on (the demo default with
DEBUG); it shows every message the shop sent, to anyone who asks.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from functools import wraps

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from notifications.mailcatcher import read_mailbox

MAILBOX_PAGE_SIZE = 50

type View = Callable[..., HttpResponse]


@dataclass(frozen=True)
class CaughtMessage:
    key: str
    sent_at: datetime | None
    sender: str
    to: str
    subject: str
    email_key: str

    @classmethod
    def of(cls, message: EmailMessage) -> "CaughtMessage":
        try:
            sent_at = parsedate_to_datetime(message["Date"])
        except (TypeError, ValueError):
            sent_at = None
        return cls(
            key=message["X-Catcher-Key"],
            sent_at=sent_at,
            sender=message["From"] or "",
            to=message["To"] or "",
            subject=message["Subject"] or "(no subject)",
            email_key=message["X-Shop-Email-Key"] or "",
        )


def _mailbox_page(view: View) -> View:
    """Answer 404, as for any unknown URL, while the mailbox page is off."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not settings.NOTIFICATIONS_MAILBOX_PAGE:
            raise Http404("the mailbox page is off")
        return view(request, *args, **kwargs)

    return wrapper


def _part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or body.get_content_subtype() != subtype:
        return ""
    return body.get_content()


@_mailbox_page
def mailbox(request: HttpRequest) -> HttpResponse:
    """List the caught messages, newest first."""
    messages = read_mailbox(settings.NOTIFICATIONS_MAILBOX_DIR)
    page = Paginator(messages, MAILBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [CaughtMessage.of(message) for message in page]
    return render(request, "notifications/mailbox.html", {"page": page, "rows": rows})


@_mailbox_page
def message_detail(request: HttpRequest, key: str) -> HttpResponse:
    """Show one message: its text part, and its HTML part in a sandbox."""
    messages = read_mailbox(settings.NOTIFICATIONS_MAILBOX_DIR)
    found = next((m for m in messages if m["X-Catcher-Key"] == key), None)
    if found is None:
        raise Http404("no such message")
    context = {
        "message": CaughtMessage.of(found),
        "text": _part(found, "plain"),
        "html": _part(found, "html"),
    }
    return render(request, "notifications/message.html", context)
