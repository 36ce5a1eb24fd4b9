"""A local SMTP server that keeps every message in a Maildir.

The demo sends its email here (``manage.py mailcatcher``) and the /mail/
page reads the Maildir; the tests run the same server in a thread, so the
SMTP path is exercised end to end. Nothing is relayed anywhere.
"""

import asyncio
import mailbox
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


class MaildirHandler:
    def __init__(self, directory: Path, delay_ms: int = 0) -> None:
        self.maildir = mailbox.Maildir(directory, create=True)
        self.delay = delay_ms / 1000

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        if self.delay:
            # A real relay takes tens to hundreds of milliseconds to accept a
            # message; the checkout benchmark sets this so that sending in the
            # request pays what it would pay in production. Awaited, so other
            # sessions are answered meanwhile, as by a relay.
            await asyncio.sleep(self.delay)
        self.maildir.add(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def start_catcher(
    directory: Path, host: str = "127.0.0.1", port: int = 0, delay_ms: int = 0
) -> Controller:
    """Start a catcher in a background thread; port 0 picks a free one.

    With ``delay_ms`` each message is accepted only after that long.
    """
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    controller = Controller(
        MaildirHandler(directory, delay_ms), hostname=host, port=port
    )
    controller.start()
    return controller


def read_mailbox(directory: Path) -> list[EmailMessage]:
    """Return the caught messages, newest first."""
    if not directory.exists():
        return []
    maildir = mailbox.Maildir(directory, create=False)
    messages = []
    for key in maildir.keys():
        with maildir.get_file(key) as handle:
            message = message_from_bytes(handle.read(), policy=policy.default)
        message["X-Catcher-Key"] = key
        messages.append(message)
    messages.sort(key=_sent_at, reverse=True)
    return messages


def _sent_at(message: EmailMessage) -> float:
    try:
        return parsedate_to_datetime(message["Date"]).timestamp()
    except (TypeError, ValueError):
        return 0.0
