"""Measure checkout latency with side effects queued and inline."""

import os
import signal
import sys
from types import FrameType

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders import benchmarks


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # SystemExit unwinds through the benchmark's finally, which stops every
    # process it started.
    raise SystemExit(128 + signum)


class Command(BaseCommand):
    help = (
        "Start the mail catcher, the checkout workers and uvicorn on a database, "
        "Redis and ports of their own (var/bench; PostgreSQL: the database of "
        "DATABASE_URL with _bench appended, dropped and created again), then "
        "place the same orders from concurrent API clients with "
        "ORDERS_SIDE_EFFECTS=queue and =inline, and print the latencies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--clients", type=int, default=16, help="concurrent API clients"
        )
        parser.add_argument(
            "--requests",
            type=int,
            default=60,
            metavar="N",
            help="checkouts each client sends in each mode",
        )
        parser.add_argument(
            "--smtp-delay-ms",
            type=int,
            default=0,
            metavar="MS",
            help="the mail catcher accepts each message after MS ms, as a relay",
        )

    def handle(
        self, *args, clients: int, requests: int, smtp_delay_ms: int, **options
    ) -> None:
        if clients < 1 or requests < 1:
            raise CommandError("--clients and --requests must be at least 1")
        if smtp_delay_ms < 0:
            raise CommandError("--smtp-delay-ms cannot be negative")
        if os.environ.get(benchmarks.ENVIRONMENT_MARKER) != "1":
            self._run_again_in_bench_environment()

        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            report = benchmarks.CheckoutBenchmark(
                clients=clients,
                per_client=requests,
                smtp_delay_ms=smtp_delay_ms,
                progress=self._progress,
            ).run()
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        except KeyboardInterrupt:
            self.stderr.write("interrupted; every process it started is stopped")
            raise SystemExit(130) from None
        self.stdout.write("")
        for line in report.lines():
            self.stdout.write(line)
        if report.failed:
            raise CommandError("some checkouts did not answer 201; see above")

    def _run_again_in_bench_environment(self) -> None:
        """Replace this process with the same command on the benchmark's resources.

        Settings are read from the environment once, at startup; only a new
        process reads the benchmark's, as every process the benchmark starts
        does.
        """
        try:
            environment = benchmarks.bench_environment(os.environ)
        except ValueError as error:
            raise CommandError(str(error)) from error
        # shop.settings creates SHOP_VAR_DIR but not its parents.
        benchmarks.BENCH_DIR.mkdir(parents=True, exist_ok=True)
        self.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)

    def _progress(self, message: str) -> None:
        self.stdout.write(f"... {message}")
        self.stdout.flush()
