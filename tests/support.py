"""Real worker processes and waiting, for the tests of async behaviour."""

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

from shop.celery import app

ROOT = Path(__file__).resolve().parent.parent


def wait_for[T](
    check: Callable[[], T], timeout: float = 30.0, interval: float = 0.1
) -> T:
    """Call check until it returns something truthy; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout}s waiting for {check}")
        time.sleep(interval)


def queued_messages(redis_client, queue: str) -> list[dict]:
    """Return the messages waiting in a Redis queue, oldest first.

    Kombu keeps a queue as a Redis list named after it, plus one list per
    priority step (name + separator + step); all of them are read.
    """
    keys = [queue.encode(), *redis_client.keys(f"{queue}\x06\x16*")]
    return [
        json.loads(raw)
        for key in keys
        for raw in reversed(redis_client.lrange(key, 0, -1))
    ]


def queued_task_names(redis_client, queue: str) -> list[str]:
    """Return the task names of the messages waiting in a Redis queue."""
    return [
        message["headers"]["task"] for message in queued_messages(redis_client, queue)
    ]


def queued_task_args(redis_client, queue: str) -> list[list]:
    """Return the positional arguments of the messages waiting in a queue."""
    calls = []
    for message in queued_messages(redis_client, queue):
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        calls.append(args)
    return calls


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for a worker process that shares this test run's resources."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        SHOP_TEST_DATABASE_NAME=str(connection.settings_dict["NAME"]),
        # Set by the mail_catcher fixture; 0 (no SMTP) for workers that send
        # no mail.
        EMAIL_PORT=str(settings.MAILERS["default"].get("OPTIONS", {}).get("port", 0)),
        NOTIFICATIONS_MAILBOX_DIR=str(settings.NOTIFICATIONS_MAILBOX_DIR),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Worker:
    """One `celery worker` process consuming the given queues."""

    def __init__(self, queues: list[str], name: str, concurrency: int = 1, **env: str):
        self.queues = queues
        self.nodename = f"{name}@test"
        self.log_path = settings.VAR_DIR / f"worker-{name}.log"
        # Each test run starts a fresh log; restarts within the run append.
        self.log_path.write_bytes(b"")
        self.env = env
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def start(self) -> "Worker":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "shop", "worker",
                "-Q", ",".join(self.queues),
                "-n", self.nodename,
                "-c", str(self.concurrency),
                "--without-mingle", "--without-gossip",
                "--include", "tests.tasks",
                "--loglevel", "INFO",
            ],
            cwd=ROOT,
            env=worker_env(**self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> "Worker":
        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, (
                f"worker {self.nodename} exited; see {self.log_path}"
            )
            return bool(app.control.ping(destination=[self.nodename], timeout=0.5))

        wait_for(answers, timeout=timeout, interval=0.2)
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Warm shutdown: finish the running task, then exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
