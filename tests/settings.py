"""Settings for the test suite: the shop's own, on private resources.

The tests never touch what a running demo uses, nor what another test run
uses: each run gets its own folder under var/test (SQLite file, mailbox,
worker logs) and its own embedded Redis on a free port. A given REDIS_URL
is used on databases 10, 12 and 13 instead of 0, 2 and 3, and emptied; two
runs on one REDIS_URL at the same time would disturb each other. Worker
processes that the tests start inherit the run's environment and read this
module too, with SHOP_TEST_DATABASE_NAME naming the database the run made.
"""

import os
import socket
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_root = Path(__file__).resolve().parent.parent
# Set once by the test process; its workers inherit them.
os.environ.setdefault(
    "SHOP_VAR_DIR", str(_root / "var" / "test" / f"run-{os.getpid()}")
)
os.environ.setdefault("SHOP_EMBEDDED_REDIS_PORT", str(_free_port()))
Path(os.environ["SHOP_VAR_DIR"]).mkdir(parents=True, exist_ok=True)

from shop.settings import *  # noqa: E402,F403
from shop.settings import (  # noqa: E402
    DATABASES,
    MAILERS,
    REDIS_URL,
    VAR_DIR,
    _redis_db,
)

REDIS_URL = _redis_db(REDIS_URL, 10)
CELERY_BROKER_URL = REDIS_URL
ORDERS_GATEWAY_REDIS_URL = _redis_db(REDIS_URL, 12)
SHOP_TASK_STATE_REDIS_URL = _redis_db(REDIS_URL, 13)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
if name := os.environ.get("SHOP_TEST_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = name

# WhiteNoise warns on every request while the collected-files folder is
# missing; the tests serve no static files.
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)

# Fast hashing: the tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS["default"]["OPTIONS"]["port"] = int(os.environ.get("EMAIL_PORT", "0"))
NOTIFICATIONS_MAILBOX_DIR = Path(
    os.environ.get("NOTIFICATIONS_MAILBOX_DIR", str(VAR_DIR / "mailbox"))
)
