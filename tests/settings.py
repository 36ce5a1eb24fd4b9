"""Settings for the test suite: the shop's own, on private resources.

The tests never touch what a running demo uses: the embedded Redis gets
its own port and files, a given REDIS_URL is used on databases 10 and 12
instead of 0 and 2, and SQLite gets its own file under var/test. Worker
processes that the tests start read the same module, with
SHOP_TEST_DATABASE_NAME naming the database the test run created.
"""

import os
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
os.environ.setdefault("SHOP_VAR_DIR", str(_root / "var" / "test"))
os.environ.setdefault("SHOP_EMBEDDED_REDIS_PORT", "16380")
(_root / "var" / "test").mkdir(parents=True, exist_ok=True)

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

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
if name := os.environ.get("SHOP_TEST_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = name

# Fast hashing: the tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS["default"]["OPTIONS"]["port"] = int(os.environ.get("EMAIL_PORT", "0"))
NOTIFICATIONS_MAILBOX_DIR = Path(
    os.environ.get("NOTIFICATIONS_MAILBOX_DIR", str(VAR_DIR / "mailbox"))
)
