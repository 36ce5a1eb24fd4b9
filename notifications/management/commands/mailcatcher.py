"""Run the demo's SMTP catcher in the foreground (the Procfile's mail process)."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.mailcatcher import start_catcher


class Command(BaseCommand):
    help = "Accept SMTP on EMAIL_HOST:EMAIL_PORT; keep messages for the /mail/ page."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--delay-ms",
            type=int,
            default=0,
            metavar="N",
            help="accept each message only after N ms, as a real relay would",
        )

    def handle(self, *args, delay_ms: int, **options) -> None:
        if delay_ms < 0:
            raise CommandError("--delay-ms cannot be negative")
        directory = settings.NOTIFICATIONS_MAILBOX_DIR
        options = settings.MAILERS["default"]["OPTIONS"]
        controller = start_catcher(
            directory, options["host"], options["port"], delay_ms=delay_ms
        )
        delay = f", accepting each message after {delay_ms} ms" if delay_ms else ""
        self.stdout.write(
            f"catching mail on {options['host']}:{options['port']} into "
            f"{directory}{delay}"
        )
        self.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
