"""Run the demo's SMTP catcher in the foreground (the Procfile's mail process)."""

import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications.mailcatcher import start_catcher


class Command(BaseCommand):
    help = "Accept SMTP on EMAIL_HOST:EMAIL_PORT; keep messages for the /mail/ page."

    def handle(self, *args, **options) -> None:
        directory = settings.NOTIFICATIONS_MAILBOX_DIR
        options = settings.MAILERS["default"]["OPTIONS"]
        controller = start_catcher(directory, options["host"], options["port"])
        self.stdout.write(
            f"catching mail on {options['host']}:{options['port']} into {directory}"
        )
        self.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
