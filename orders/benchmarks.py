"""The checkout benchmark: an order's side effects queued versus inline.

``manage.py bench_checkout`` (``make bench-checkout``) runs it. It starts
what the demo runs (Procfile): the SMTP catcher, one worker per queue that
checkout feeds and uvicorn, on a database, Redis and ports of its own under
var/bench, so neither a running demo nor the tests notice it. Then the same
API clients place the same orders twice over HTTP, first with
ORDERS_SIDE_EFFECTS = "queue", then "inline", and the latency each client
saw is reported. Figures are printed, never asserted.
"""

import http.client
import itertools
import json
import math
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import environ
import psutil
import psycopg
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections, transaction
from psycopg import sql
from rest_framework.authtoken.models import Token

from orders.models import Order
from orders.payments import CARD_APPROVED
from orders.progress import background_work
from orders.tasks import record_order_analytics_task, send_order_confirmation_task
from shop import embedded_redis
from shop.celery import app
from shop.models import Customer, OutboxMessage, Product
from shop.queues import ROUTES
from shop.tasks import record_stock_movements_task, update_search_index_task

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
# Set in the benchmark's environment: a process that has it already reads
# its settings from the benchmark's resources.
ENVIRONMENT_MARKER = "SHOP_BENCH_CHECKOUT"
# Beside the demo's 16379 and the tests' 16380.
REDIS_PORT = 16381
# On a Redis named by REDIS_URL: the demo uses databases 0 and 2, the tests
# 10 and 12. The benchmark empties its two at the start.
REDIS_BROKER_DB = 11
REDIS_GATEWAY_DB = 13

MODES = ("queue", "inline")
# The consumers of order.completed (orders/events.py) and their queues.
CHECKOUT_TASKS = (
    send_order_confirmation_task,
    record_stock_movements_task,
    record_order_analytics_task,
    update_search_index_task,
)
CHECKOUT_QUEUES = tuple(dict.fromkeys(ROUTES[task.name] for task in CHECKOUT_TASKS))

PRODUCTS = 500
# Far more than a run can sell, so no checkout is refused for stock.
PRODUCT_STOCK = 1_000_000_000
WARM_UP_PER_CLIENT = 2
DRAIN_TIMEOUT_SECONDS = 600.0


def bench_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """Return the environment with every resource moved to the benchmark's own."""
    bench = dict(environment)
    bench.update(
        {
            ENVIRONMENT_MARKER: "1",
            "DJANGO_SETTINGS_MODULE": "shop.settings",
            "SHOP_VAR_DIR": str(BENCH_DIR),
            "DATABASE_URL": bench_database_url(environment.get("DATABASE_URL", "")),
            "NOTIFICATIONS_MAILBOX_DIR": str(BENCH_DIR / "mailbox"),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            # Measured as deployed: with DEBUG on, Django keeps every query
            # of a request in memory.
            "DJANGO_DEBUG": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        }
    )
    # Each phase sets it for the web server.
    bench.pop("ORDERS_SIDE_EFFECTS", None)
    if url := environment.get("REDIS_URL"):
        broker = _redis_database(url, REDIS_BROKER_DB)
        bench.update(
            REDIS_URL=broker,
            CELERY_BROKER_URL=broker,
            ORDERS_GATEWAY_REDIS_URL=_redis_database(url, REDIS_GATEWAY_DB),
        )
    else:
        bench["SHOP_EMBEDDED_REDIS_PORT"] = str(REDIS_PORT)
        bench.pop("CELERY_BROKER_URL", None)
        bench.pop("ORDERS_GATEWAY_REDIS_URL", None)
    return bench


def bench_database_url(url: str) -> str:
    """Return the benchmark's database URL for the user's DATABASE_URL.

    No URL or SQLite gives a file under var/bench; PostgreSQL gives the
    database named like the user's plus ``_bench``, on the same server.
    """
    if not url or url.startswith("sqlite"):
        return f"sqlite:///{BENCH_DIR / 'bench.sqlite3'}"
    engine = environ.Env.db_url_config(url)["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise ValueError(f"the benchmark runs on SQLite or PostgreSQL, not {engine}")
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.endswith("_bench"):
        name = f"{name}_bench"
    return parts._replace(path=f"/{name}").geturl()


def _redis_database(url: str, db: int) -> str:
    return urlsplit(url)._replace(path=f"/{db}").geturl()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of values, fraction from 0 to 1.

    ``percentile(latencies, 0.99)`` is the smallest latency that 99% of the
    requests did not exceed; it is always one of the measured values.
    """
    if not values:
        raise ValueError("no values")
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be above 0 and at most 1")
    ordered = sorted(values)
    return ordered[math.ceil(fraction * len(ordered)) - 1]


# --- Results --------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One checkout as its client saw it; status is the exception's name on error."""

    status: int | str
    seconds: float
    body: bytes


@dataclass
class Phase:
    mode: str
    outcomes: list[Outcome]
    seconds: float
    warm_up_failures: Counter[int | str]
    # Queue mode only: messages queued or running at the last response, and
    # how long the workers then took to finish them.
    backlog: int | None = None
    drain_seconds: float | None = None
    # Background step label -> how many of the measured orders have it done.
    steps_done: Counter[str] = field(default_factory=Counter)
    # Who used the CPUs while the orders were measured: name -> seconds.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def latencies_ms(self) -> list[float]:
        return [o.seconds * 1000 for o in self.outcomes if o.status == 201]

    @property
    def failures(self) -> Counter[int | str]:
        return Counter(o.status for o in self.outcomes if o.status != 201)

    def order_ids(self) -> list[int]:
        return [json.loads(o.body)["id"] for o in self.outcomes if o.status == 201]


@dataclass
class Report:
    clients: int
    per_client: int
    smtp_delay_ms: int
    database: str
    web: str
    workers: dict[str, str]
    phases: list[Phase] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(phase.failures or phase.warm_up_failures for phase in self.phases)

    def lines(self) -> list[str]:
        """Return the report as printed: figures, work done, parameters."""
        return [
            f"Checkout over HTTP: {self.clients} clients, {self.per_client} orders "
            f"each per mode, after {self.clients * WARM_UP_PER_CLIENT} warm-up "
            "orders",
            "",
            *self._figures(),
            "",
            *self._work_done(),
            *self._failures(),
            "",
            *self._parameters(),
        ]

    def _figures(self) -> list[str]:
        lines = [
            f"{'mode':<8}{'requests':>9}{'ok':>7}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'mean ms':>9}{'requests/s':>12}"
        ]
        for phase in self.phases:
            latencies = phase.latencies_ms or [math.nan]
            lines.append(
                f"{phase.mode:<8}{len(phase.outcomes):>9}"
                f"{len(phase.latencies_ms):>7}"
                f"{percentile(latencies, 0.5):>9.1f}"
                f"{percentile(latencies, 0.99):>9.1f}"
                f"{sum(latencies) / len(latencies):>9.1f}"
                f"{len(phase.latencies_ms) / phase.seconds:>12.1f}"
            )
        latencies = {phase.mode: phase.latencies_ms for phase in self.phases}
        queue, inline = latencies.get("queue"), latencies.get("inline")
        if queue and inline:
            p50 = percentile(inline, 0.5) / percentile(queue, 0.5)
            p99 = percentile(inline, 0.99) / percentile(queue, 0.99)
            lines += ["", f"inline/queue  p50 {p50:.2f}x  p99 {p99:.2f}x"]
        return lines

    def _work_done(self) -> list[str]:
        lines = [
            f"queue mode: {phase.backlog} messages waiting or running at the last "
            f"response, done by the workers {phase.drain_seconds:.1f} s later"
            for phase in self.phases
            if phase.backlog is not None
        ]
        lines.append("background work done, counted in orders (orders/progress.py):")
        for phase in self.phases:
            lines.append(
                f"  {phase.mode:<8}{len(phase.latencies_ms)} placed, "
                + ", ".join(f"{n} {label}" for label, n in phase.steps_done.items())
            )
        if any(
            n < len(phase.latencies_ms)
            for phase in self.phases
            for n in phase.steps_done.values()
        ):
            lines += [
                "  A step counts only once it is visible for the order. Search needs",
                "  the order's products indexed after it was placed: concurrent",
                "  inline requests can write a product's entry out of order, while",
                "  the single search worker writes them one at a time.",
            ]
        lines.append("CPU seconds used while measuring:")
        for phase in self.phases:
            used = ", ".join(f"{name} {sec:.1f}" for name, sec in phase.cpu.items())
            available = (os.cpu_count() or 1) * phase.seconds
            lines.append(f"  {phase.mode:<8}{used} (of {available:.1f} available)")
        return lines

    def _failures(self) -> list[str]:
        return [
            f"NOT 201 in {phase.mode} mode: measured {dict(phase.failures)}, "
            f"warm-up {dict(phase.warm_up_failures)} (logs in var/bench/logs)"
            for phase in self.phases
            if phase.failures or phase.warm_up_failures
        ]

    def _parameters(self) -> list[str]:
        cpus = os.cpu_count()
        workers = ", ".join(f"{queue} x{n}" for queue, n in self.workers.items())
        return [
            f"clients      {self.clients} threads, one keep-alive connection each",
            f"requests     {self.per_client} per client per mode, 1-5 random lines "
            f"of {PRODUCTS} products",
            f"database     {self.database}",
            f"SMTP delay   {self.smtp_delay_ms} ms per message (mail catcher)",
            f"gateway      {settings.ORDERS_GATEWAY_LATENCY_MS} ms simulated latency",
            f"CPUs         {cpus}",
            f"web          {self.web}",
            f"workers      {workers} (Procfile flags)",
            "",
            "Both modes ran on this machine against the same database, server and",
            "clients. In queue mode the workers compete with the web server, and",
            f"with these client threads, for the same {cpus} CPUs while orders arrive;",
            "in inline mode they sit idle and each request does their work itself.",
            'CPU "elsewhere" is whatever else ran meanwhile (and "postgres" every',
            "PostgreSQL process on the machine): more than a little elsewhere means",
            "another load disturbed the run.",
        ]


# --- Database and data ----------------------------------------------------


def recreate_database() -> str:
    """Start from an empty benchmark database and return a description of it."""
    database = settings.DATABASES["default"]
    connections.close_all()
    if database["ENGINE"] == "django.db.backends.sqlite3":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database['NAME']}{suffix}").unlink(missing_ok=True)
        return f"sqlite {Path(database['NAME']).relative_to(ROOT)}"
    name = database["NAME"]
    # The one guard between DROP DATABASE and the user's own database.
    if not name.endswith("_bench"):
        raise RuntimeError(f"refusing to recreate {name!r}: not a _bench database")
    params = {
        "host": database["HOST"],
        "port": database["PORT"],
        "user": database["USER"],
        "password": database["PASSWORD"],
    }
    with psycopg.connect(
        dbname="postgres",
        autocommit=True,
        **{key: value for key, value in params.items() if value},
    ) as maintenance:
        maintenance.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
        maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        version = maintenance.info.server_version
    return (
        f"postgresql {version // 10000}.{version % 10000} database {name}, "
        f"CONN_MAX_AGE {database['CONN_MAX_AGE']}"
    )


def seed(clients: int) -> tuple[list[str], list[str]]:
    """Create the products and a customer with an API token per client.

    Return the product codes and the tokens.
    """
    rng = random.Random(0)
    user_model = get_user_model()
    with transaction.atomic():
        products = Product.objects.bulk_create(
            Product(
                code=f"B{number:05d}",
                name=f"Bench product {number}",
                description="Made for the checkout benchmark.",
                price=Decimal(rng.randint(100, 5000)) / 100,
                stock=PRODUCT_STOCK,
            )
            for number in range(1, PRODUCTS + 1)
        )
        tokens = []
        for number in range(1, clients + 1):
            username = f"bench{number:02d}"
            user = user_model.objects.create_user(username, f"{username}@example.com")
            Customer.objects.create(user=user, country="United Kingdom")
            tokens.append(Token.objects.create(user=user).key)
    return [product.code for product in products], tokens


def steps_done(order_ids: list[int]) -> Counter[str]:
    """Count, for each background step, the orders that have it done."""
    done: Counter[str] = Counter()
    for batch in itertools.batched(order_ids, 500):
        for order in Order.objects.filter(pk__in=batch):
            for step in background_work(order):
                done[step.label.lower()] += step.done
    return done


# --- Processes ------------------------------------------------------------


def procfile_commands(path: Path = ROOT / "Procfile") -> dict[str, list[str]]:
    """Return each Procfile process with its command split into words."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = shlex.split(command)
    return commands


def _runnable(words: list[str]) -> list[str]:
    # honcho finds python, celery and uvicorn on the virtualenv's PATH; here
    # they run under this interpreter, whatever PATH holds.
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return [sys.executable, "-m", *words]


def _set_option(words: list[str], option: str, value: str) -> list[str]:
    at = words.index(option)
    return [*words[: at + 1], value, *words[at + 2 :]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Call check until it returns True; raise RuntimeError after timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class Processes:
    """The benchmark's child processes, logged to files, stopped in reverse order.

    Each runs in its own process group: Ctrl-C in the terminal reaches only
    the benchmark, which then stops them in order, and killing a group at
    the end also ends the worker pool or server processes a child started.
    """

    def __init__(self, environment: dict[str, str], log_dir: Path) -> None:
        self.environment = environment
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], **environment: str) -> None:
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                args,
                cwd=ROOT,
                env={**self.environment, **environment},
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    def alive(self, name: str) -> bool:
        """Return True while the process runs; raise RuntimeError once it exited."""
        code = self.running[name].poll()
        if code is not None:
            raise RuntimeError(
                f"{name} exited with status {code}; see {self.log_dir / name}.log"
            )
        return True

    def stop(self, name: str, timeout: float = 30.0) -> None:
        """Stop gracefully (SIGTERM), then kill whatever is left of its group."""
        process = self.running.pop(name)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name)

    def cpu_seconds(self, *names: str) -> float:
        """Return the CPU seconds used so far by these processes and their children."""
        return sum(
            _tree_cpu_seconds(process.pid)
            for name, process in self.running.items()
            if name.startswith(names)
        )


def _tree_cpu_seconds(pid: int) -> float:
    # Children that exited meanwhile (a pool process replaced after its
    # --max-tasks-per-child) are missed; the figures are a lower bound.
    total = 0.0
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return total
    for process in tree:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def cpu_sample(processes: Processes) -> dict[str, float]:
    """Return the CPU seconds used so far by each part of the benchmark."""
    machine = psutil.cpu_times()
    own = psutil.Process().cpu_times()
    sample = {
        "web": processes.cpu_seconds("web"),
        "workers": processes.cpu_seconds("worker-"),
        "clients": own.user + own.system,
        "mail and redis": processes.cpu_seconds("mail", "redis"),
    }
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        sample["postgres"] = _postgres_cpu_seconds()
    sample["machine"] = sum(machine) - machine.idle - machine.iowait
    return sample


def _postgres_cpu_seconds() -> float:
    # Every PostgreSQL server process on this machine, serving the benchmark
    # or not. A backend that exited (one per connection) is counted in the
    # children times of the postmaster that reaped it.
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] != "postgres":
            continue
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def cpu_used(
    before: Mapping[str, float], after: Mapping[str, float]
) -> dict[str, float]:
    """Return the CPU seconds used between two samples; the rest is "elsewhere"."""
    used = {name: after[name] - before[name] for name in before}
    machine = used.pop("machine")
    used["elsewhere"] = max(machine - sum(used.values()), 0.0)
    return used


def _smtp_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _workers_answer(queues: Sequence[str]) -> bool:
    replies = app.control.ping(timeout=1.0)
    names = {name for reply in replies for name in reply}
    return all(any(name.startswith(f"{q}@") for name in names) for q in queues)


def _web_answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/api/products/?q=bench")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def queue_backlog(broker: redis.Redis) -> int:
    """Return the messages not yet run: unsent, queued, or taken by a worker.

    Unsent messages are outbox rows (shop/outbox.py) that no relay has
    published yet. Kombu keeps a queue as a Redis list and each message a
    worker has taken but not yet acknowledged in the ``unacked`` hash; with
    late acks, a message leaves that hash only when its task has finished.
    """
    unsent = OutboxMessage.objects.filter(sent_at__isnull=True).count()
    waiting = sum(broker.llen(queue) for queue in CHECKOUT_QUEUES)
    return unsent + waiting + broker.hlen("unacked")


def wait_for_drain(broker: redis.Redis) -> float:
    """Wait until the workers have run every queued message; return the seconds."""
    started = time.perf_counter()
    wait_until(
        lambda: queue_backlog(broker) == 0,
        "the workers to drain the queues",
        timeout=DRAIN_TIMEOUT_SECONDS,
    )
    return time.perf_counter() - started


# --- Load -----------------------------------------------------------------


def _order_body(rng: random.Random, codes: Sequence[str]) -> str:
    lines = [
        {"product": code, "quantity": rng.randint(1, 3)}
        for code in rng.sample(codes, rng.randint(1, 5))
    ]
    return json.dumps({"lines": lines, "card_number": CARD_APPROVED})


def _client(
    port: int,
    token: str,
    codes: Sequence[str],
    rng: random.Random,
    count: int,
    outcomes: list[Outcome],
    start: threading.Barrier,
    stop: threading.Event,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    start.wait()
    for _ in range(count):
        if stop.is_set():
            break
        body = _order_body(rng, codes)
        request_headers = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        began = time.perf_counter()
        try:
            connection.request("POST", "/api/orders/", body, request_headers)
            response = connection.getresponse()
            payload = response.read()
            status: int | str = response.status
        except (OSError, http.client.HTTPException) as error:
            payload, status = b"", type(error).__name__
            # The next request opens a new connection.
            connection.close()
        outcomes.append(Outcome(status, time.perf_counter() - began, payload))
    connection.close()


def run_clients(
    port: int, tokens: Sequence[str], codes: Sequence[str], count: int, seed: int
) -> tuple[list[Outcome], float]:
    """Send count checkouts from each token's client thread at once.

    Return every outcome and the seconds from the first request to the last
    response. The same seed gives each client the same orders.
    """
    per_client: list[list[Outcome]] = [[] for _ in tokens]
    start = threading.Barrier(len(tokens) + 1)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_client,
            args=(
                port,
                token,
                codes,
                random.Random(seed + n),
                count,
                outcomes,
                start,
                stop,
            ),
            # Ctrl-C leaves them to the interpreter's exit instead of
            # waiting on a request in flight.
            daemon=True,
        )
        for n, (token, outcomes) in enumerate(zip(tokens, per_client, strict=True))
    ]
    for thread in threads:
        thread.start()
    try:
        start.wait()
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - began
    finally:
        stop.set()
    return [outcome for outcomes in per_client for outcome in outcomes], seconds


# --- The run --------------------------------------------------------------


@dataclass
class CheckoutBenchmark:
    """One run: the processes, the seeded clients, the report being filled."""

    clients: int
    per_client: int
    smtp_delay_ms: int
    progress: Callable[[str], None]
    processes: Processes = field(init=False)
    procfile: dict[str, list[str]] = field(init=False)
    smtp_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        log_dir = BENCH_DIR / "logs"
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
        environment = {
            **os.environ,
            "EMAIL_PORT": str(self.smtp_port),
            "PYTHONUNBUFFERED": "1",
        }
        self.processes = Processes(environment, log_dir)
        self.procfile = procfile_commands()

    def run(self) -> Report:
        """Run both phases against freshly started processes; stop them all after.

        Must run in the benchmark's environment (``bench_environment``): this
        process and every one it starts read their settings from it.
        """
        try:
            broker = self._start_redis()
            database = recreate_database()
            self.progress(f"migrating and seeding {database}")
            call_command("migrate", interactive=False, verbosity=0)
            codes, tokens = seed(self.clients)
            connections.close_all()
            workers = self._start_mail_and_workers()

            report = Report(
                clients=self.clients,
                per_client=self.per_client,
                smtp_delay_ms=self.smtp_delay_ms,
                database=database,
                web=shlex.join(self._web_command()),
                workers={
                    queue: words[words.index("--concurrency") + 1]
                    for queue, words in workers.items()
                },
            )
            for mode in MODES:
                report.phases.append(self._phase(mode, tokens, codes, broker))
            return report
        finally:
            self.processes.stop_all()

    def _start_redis(self) -> redis.Redis:
        """Start the embedded Redis unless REDIS_URL is set; empty both databases."""
        if settings.SHOP_EMBEDDED_REDIS:
            if embedded_redis.is_running(REDIS_PORT):
                raise RuntimeError(f"something already answers on port {REDIS_PORT}")
            self.progress(f"starting redis on port {REDIS_PORT}")
            self.processes.start(
                "redis", embedded_redis.server_args(REDIS_PORT, BENCH_DIR / "redis")
            )
            wait_until(
                lambda: self.processes.alive("redis")
                and embedded_redis.is_running(REDIS_PORT),
                "redis",
            )
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.flushdb()
        redis.Redis.from_url(settings.ORDERS_GATEWAY_REDIS_URL).flushdb()
        return broker

    def _start_mail_and_workers(self) -> dict[str, list[str]]:
        """Start the catcher and a worker per checkout queue; return their commands."""
        shutil.rmtree(settings.NOTIFICATIONS_MAILBOX_DIR, ignore_errors=True)
        workers = {queue: self.procfile[f"worker-{queue}"] for queue in CHECKOUT_QUEUES}
        self.progress(
            f"starting the mail catcher (delay {self.smtp_delay_ms} ms) and workers "
            f"for {', '.join(workers)}"
        )
        mail = [*self.procfile["mail"], "--delay-ms", str(self.smtp_delay_ms)]
        self.processes.start("mail", _runnable(mail))
        for queue, words in workers.items():
            self.processes.start(f"worker-{queue}", _runnable(words))
        wait_until(
            lambda: self.processes.alive("mail") and _smtp_answers(self.smtp_port),
            "the mail catcher",
        )
        wait_until(
            lambda: all(self.processes.alive(f"worker-{queue}") for queue in workers)
            and _workers_answer(workers),
            "the workers",
        )
        return workers

    def _web_command(self) -> list[str]:
        return _set_option(self.procfile["web"], "--port", str(self.web_port))

    def _phase(
        self, mode: str, tokens: list[str], codes: list[str], broker: redis.Redis
    ) -> Phase:
        """Serve with ORDERS_SIDE_EFFECTS=mode, warm up, then measure the clients."""
        self.progress(f"{mode}: starting uvicorn with ORDERS_SIDE_EFFECTS={mode}")
        self.processes.start(
            "web", _runnable(self._web_command()), ORDERS_SIDE_EFFECTS=mode
        )
        wait_until(
            lambda: self.processes.alive("web") and _web_answers(self.web_port),
            "uvicorn",
        )
        warm_up, _ = run_clients(
            self.web_port, tokens, codes, WARM_UP_PER_CLIENT, seed=10_000
        )
        # The measured orders start with empty queues in both modes.
        wait_for_drain(broker)

        self.progress(f"{mode}: {len(tokens)} clients x {self.per_client} checkouts")
        before = cpu_sample(self.processes)
        outcomes, seconds = run_clients(
            self.web_port, tokens, codes, self.per_client, seed=0
        )
        phase = Phase(
            mode,
            outcomes,
            seconds,
            warm_up_failures=Counter(o.status for o in warm_up if o.status != 201),
            cpu=cpu_used(before, cpu_sample(self.processes)),
        )
        if mode == "queue":
            phase.backlog = queue_backlog(broker)
            phase.drain_seconds = wait_for_drain(broker)
            self.progress(
                f"{mode}: workers finished {phase.backlog} messages in "
                f"{phase.drain_seconds:.1f} s"
            )
        # Stopped before counting: it frees the database connections it holds.
        self.processes.stop("web")

        phase.steps_done = steps_done(phase.order_ids())
        connections.close_all()
        return phase
