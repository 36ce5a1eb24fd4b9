"""Benchmark the queues: critical wait under a flood, and drain rates.

``make bench-queues`` runs it on its own Redis and SQLite file under
var/bench-queues. Figures are printed, never asserted.

1. The article's priority worker (one ``celery worker -Q critical,default,low``
   with two processes): how long critical messages wait before they start,
   idle and while 10,000 low tasks are queued; p50, p99 and the p99 ratio.
2. Drain rate on one worker process of the search queue: 3,000 messages of
   the shop's routed index task, of a no-op ShopTask, and of a bare Celery
   no-op task, each queued first and then consumed; messages per second and
   the ratios to the bare no-op.
"""

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis
from celery import Task
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop import bench_tasks, embedded_redis
from shop.celery import app
from shop.models import Product
from shop.tasks import update_search_index_task

ROOT = Path(__file__).resolve().parents[3]


def percentile(values: list[float], fraction: float) -> float:
    """Return the value below which `fraction` of the sorted values lie."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise CommandError(f"gave up waiting for {what}")
        time.sleep(0.01)


class BenchWorker:
    """A `celery worker` process with the benchmark's tasks loaded."""

    def __init__(self, queues: str, name: str, concurrency: int) -> None:
        self.nodename = f"{name}@bench"
        log = open(settings.VAR_DIR / f"worker-{name}.log", "wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "shop", "worker",
                "-Q", queues, "-n", self.nodename, "-c", str(concurrency),
                "--without-mingle", "--without-gossip",
                "--include", "shop.bench_tasks", "--loglevel", "WARNING",
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        wait_until(
            lambda: bool(app.control.ping(destination=[self.nodename], timeout=0.5)),
            60,
            f"worker {self.nodename}",
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Command(BaseCommand):
    help = "Critical-queue wait under a flood of low tasks, and drain rates."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--flood", type=int, default=10_000)
        parser.add_argument("--probes", type=int, default=200)
        parser.add_argument("--drain", type=int, default=3_000)
        parser.add_argument(
            "--low-task-ms", type=float, default=5.0, help="work of each flood task"
        )

    def handle(self, *args, **options) -> None:
        if not settings.SHOP_EMBEDDED_REDIS or "bench-queues" not in str(
            settings.VAR_DIR
        ):
            raise CommandError("run it with `make bench-queues`: it empties its Redis")
        port = settings.SHOP_EMBEDDED_REDIS_PORT
        server = None
        if not embedded_redis.is_running(port):
            server = embedded_redis.start(port, settings.VAR_DIR / "redis")
        self.broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        try:
            self.broker.flushall()
            call_command("migrate", verbosity=0)
            self._seed_products()
            waits = self._critical_waits(options)
            drains = self._drain_rates(options["drain"])
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
        self._report(options, waits, drains)

    def _seed_products(self) -> None:
        if not Product.objects.exists():
            Product.objects.bulk_create(
                Product(code=f"B{n:05d}", name=f"Bench product {n}", price=1, stock=5)
                for n in range(200)
            )
        self.product_ids = list(Product.objects.values_list("pk", flat=True))

    def _probe(self, key: str, count: int) -> list[float]:
        """Send probes to critical 20 ms apart; return their waits in ms."""
        for _ in range(count):
            bench_tasks.probe_task.apply_async((key, time.time()), queue="critical")
            time.sleep(0.02)
        state = bench_tasks.bench_state()
        wait_until(lambda: state.llen(key) >= count, 600, "the probes")
        return [float(value) * 1000 for value in state.lrange(key, 0, -1)]

    def _critical_waits(self, options: dict) -> dict[str, list[float]]:
        self.stdout.write("critical wait: starting the priority worker")
        worker = BenchWorker("critical,default,low", "priority", concurrency=2)
        try:
            idle = self._probe("probe:idle", options["probes"])
            self.stdout.write(f"critical wait: queueing {options['flood']:,} low tasks")
            with app.producer_or_acquire() as producer:
                for _ in range(options["flood"]):
                    bench_tasks.busy_task.apply_async(
                        (options["low_task_ms"],), queue="low", producer=producer
                    )
            backlog_at_start = self.broker.llen("low")
            flood = self._probe("probe:flood", options["probes"])
            backlog_at_end = self.broker.llen("low")
        finally:
            worker.stop()
        self.backlog = (backlog_at_start, backlog_at_end)
        self.broker.delete("low")
        return {"idle": idle, "flood": flood}

    def _drain(self, name: str, send: Callable[[], None], count: int) -> float:
        """Queue `count` messages, then let one worker take them; return msg/s."""
        worker = BenchWorker("search", f"drain-{name}", concurrency=1)
        try:
            app.control.cancel_consumer("search", destination=[worker.nodename])
            time.sleep(0.5)
            with app.producer_or_acquire() as producer:
                for _ in range(count):
                    send(producer)
            started = time.perf_counter()
            app.control.add_consumer("search", destination=[worker.nodename])
            wait_until(
                lambda: self.broker.llen("search") == 0
                and self.broker.hlen("unacked") == 0,
                600,
                f"the {name} drain",
            )
            return count / (time.perf_counter() - started)
        finally:
            worker.stop()

    def _drain_rates(self, count: int) -> dict[str, float]:
        ids = self.product_ids
        sends: dict[str, tuple[Task, Callable[[int], tuple]]] = {
            "bare Celery no-op": (bench_tasks.bare_noop_task, lambda n: ()),
            "ShopTask no-op": (bench_tasks.shop_noop_task, lambda n: ()),
            "shop index update": (
                update_search_index_task,
                lambda n: ([ids[n % len(ids)]],),
            ),
        }
        rates = {}
        for name, (task, arguments) in sends.items():
            self.stdout.write(f"drain: {count:,} x {name}")
            numbers = iter(range(count))
            rates[name] = self._drain(
                name.split()[0],
                lambda producer, task=task, arguments=arguments, numbers=numbers: (
                    task.apply_async(
                        arguments(next(numbers)), queue="search", producer=producer
                    )
                ),
                count,
            )
        return rates

    def _report(self, options: dict, waits: dict, drains: dict) -> None:
        out = self.stdout.write
        out("")
        out(
            f"critical wait, ms (worker -Q critical,default,low -c 2; "
            f"{options['probes']} probes 20 ms apart; flood of {options['flood']:,} "
            f"low tasks of {options['low_task_ms']:g} ms each, "
            f"{self.backlog[0]:,} queued when probing began, {self.backlog[1]:,} "
            "still queued when it ended)"
        )
        out(f"{'':<8}{'p50':>8}{'p99':>8}{'max':>8}")
        for name, values in waits.items():
            out(
                f"{name:<8}{statistics.median(values):>8.1f}"
                f"{percentile(values, 0.99):>8.1f}{max(values):>8.1f}"
            )
        ratio = percentile(waits["flood"], 0.99) / percentile(waits["idle"], 0.99)
        out(f"p99 flood / idle: {ratio:.2f}")
        out("")
        out(f"drain rate, one search worker process, {options['drain']:,} messages")
        bare = drains["bare Celery no-op"]
        for name, rate in drains.items():
            out(f"{name:<20}{rate:>10,.0f} msg/s{rate / bare:>8.2f} x bare")
        out(f"cores: {os.cpu_count()}, database: SQLite, broker: embedded Redis")
