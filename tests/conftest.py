import shutil

import pytest
import redis
from django.conf import settings

from notifications.mailcatcher import start_catcher
from shop import embedded_redis
from shop.queues import QUEUES
from tests.support import Worker


@pytest.fixture(scope="session", autouse=True)
def redis_server():
    """A Redis for the broker and the gateway, emptied before the run."""
    process = None
    if settings.SHOP_EMBEDDED_REDIS:
        port = settings.SHOP_EMBEDDED_REDIS_PORT
        if not embedded_redis.is_running(port):
            process = embedded_redis.start(port, settings.VAR_DIR / "redis")
    for url in (settings.CELERY_BROKER_URL, settings.ORDERS_GATEWAY_REDIS_URL):
        redis.Redis.from_url(url).flushdb()
    yield redis.Redis.from_url(settings.CELERY_BROKER_URL)
    if process is not None:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="session")
def mail_catcher():
    """A real SMTP server on a free port; workers and tests send through it."""
    directory = settings.NOTIFICATIONS_MAILBOX_DIR
    shutil.rmtree(directory, ignore_errors=True)
    controller = start_catcher(directory)
    settings.MAILERS["default"]["OPTIONS"]["port"] = controller.port
    yield directory
    controller.stop()


@pytest.fixture(scope="session")
def workers(django_db_setup, django_db_blocker, mail_catcher, redis_server):
    """One real worker process per declared queue, for the whole run."""
    pool = {queue: Worker([queue], name=queue) for queue in QUEUES}
    for worker in pool.values():
        worker.start()
    for worker in pool.values():
        worker.wait_ready()
    yield pool
    for worker in pool.values():
        worker.stop()
