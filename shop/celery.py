"""The Celery application of the shop.

Workers start with ``celery -A shop worker -Q <queue>``; every setting comes
from Django's settings under the ``CELERY_`` prefix (shop/settings.py).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
