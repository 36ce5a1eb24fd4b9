import shutil

import pytest
import redis
from django.conf import settings

from notifications.mailcatcher import start_catcher
from shop import embedded_redis
from shop.queues import QUEUES
from tests.support import Worker


@pytest.fixture(scope="session", autouse=True)
def redis_server(request):
    """A Redis for the broker, the gateway and task state, emptied first.

    The run's folder under var/test goes when the run passes; after a failure
    it stays, with the workers' logs.
    """
    process = None
    if settings.SHOP_EMBEDDED_REDIS:
        port = settings.SHOP_EMBEDDED_REDIS_PORT
        if not embedded_redis.is_running(port):
            process = embedded_redis.start(port, settings.VAR_DIR / "redis")
    for url in (
        settings.CELERY_BROKER_URL,
        settings.ORDERS_GATEWAY_REDIS_URL,
        settings.SHOP_TASK_STATE_REDIS_URL,
    ):
        redis.Redis.from_url(url).flushdb()
    yield redis.Redis.from_url(settings.CELERY_BROKER_URL)
    if process is not None:
        process.terminate()
        process.wait(10)
    if request.session.testsfailed == 0:
        shutil.rmtree(settings.VAR_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def mail_catcher():
    """A real SMTP server on a free port; workers and tests send through it."""
    directory = settings.NOTIFICATIONS_MAILBOX_DIR
    shutil.rmtree(directory, ignore_errors=True)
    controller = start_catcher(directory)
    # The test runner swaps mail for an in-memory outbox; this run wants the
    # real SMTP path, in this process and in the workers it starts.
    locmem = settings.MAILERS
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": controller.port, "timeout": 10},
        }
    }
    yield directory
    settings.MAILERS = locmem
    controller.stop()


@pytest.fixture(scope="module")
def workers(django_db_setup, mail_catcher, redis_server):
    """One real worker process per declared queue, for the tests of a module.

    Modules that do not ask for workers see messages stay in their queues.
    """
    pool = {queue: Worker([queue], name=queue) for queue in QUEUES}
    for worker in pool.values():
        worker.start()
    for worker in pool.values():
        worker.wait_ready()
    yield pool
    for worker in pool.values():
        worker.stop()
    redis_server.flushdb()


@pytest.fixture
def broker(redis_server):
    """The broker's Redis, with every queue emptied before and after the test."""
    redis_server.flushdb()
    yield redis_server
    redis_server.flushdb()
