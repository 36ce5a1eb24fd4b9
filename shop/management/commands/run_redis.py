"""Run the embedded Redis in the foreground (the Procfile's redis process)."""

import os
import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from shop import embedded_redis


class Command(BaseCommand):
    help = "Run the project's own Redis server, unless REDIS_URL points elsewhere."

    def handle(self, *args, **options) -> None:
        if not settings.SHOP_EMBEDDED_REDIS:
            self.stdout.write(f"REDIS_URL is set; using {settings.REDIS_URL}")
            # Stay up: the process manager stops everything when one exits.
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            while True:
                time.sleep(3600)
        port = settings.SHOP_EMBEDDED_REDIS_PORT
        if embedded_redis.is_running(port):
            self.stderr.write(
                f"something already answers on port {port}; stop it first"
            )
            raise SystemExit(1)
        args = embedded_redis.server_args(port, settings.VAR_DIR / "redis")
        self.stdout.write(f"embedded redis on 127.0.0.1:{port}, files in var/redis")
        self.stdout.flush()
        os.execv(args[0], args)
