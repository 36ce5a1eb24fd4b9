"""The checkout benchmark's logic that is not timing: figures and resources.

The benchmark itself (``manage.py bench_checkout``) prints figures and is
never run here.
"""

from collections import Counter

import pytest

from orders.benchmarks import (
    BENCH_DIR,
    Outcome,
    Phase,
    Report,
    bench_database_url,
    bench_environment,
    cpu_used,
    percentile,
)


def test_percentile_is_the_nearest_rank():
    values = list(range(100, 0, -1))

    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100


def test_percentile_of_few_values_is_one_of_them():
    assert percentile([3.0, 1.0], 0.5) == 1.0
    assert percentile([3.0, 1.0], 0.99) == 3.0


@pytest.mark.parametrize(("values", "fraction"), [([], 0.5), ([1.0], 0), ([1.0], 1.5)])
def test_percentile_refuses_no_values_and_fractions_outside_0_to_1(values, fraction):
    with pytest.raises(ValueError):
        percentile(values, fraction)


def test_postgres_database_gets_a_bench_database_on_the_same_server():
    url = "postgres://postgres@127.0.0.1:5432/shop?sslmode=disable"

    assert bench_database_url(url) == (
        "postgres://postgres@127.0.0.1:5432/shop_bench?sslmode=disable"
    )


def test_bench_database_keeps_its_name():
    url = "postgresql://postgres@db/shop_bench"

    assert bench_database_url(url) == url


@pytest.mark.parametrize("url", ["", "sqlite:////srv/shop.sqlite3"])
def test_sqlite_or_no_database_gets_a_file_under_var_bench(url):
    assert bench_database_url(url) == f"sqlite:///{BENCH_DIR / 'bench.sqlite3'}"


def test_other_database_engines_are_refused():
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        bench_database_url("mysql://root@127.0.0.1/shop")


def test_environment_without_redis_url_uses_a_private_embedded_redis():
    user = {
        "PATH": "/usr/bin",
        "ORDERS_SIDE_EFFECTS": "inline",
        "CELERY_BROKER_URL": "redis://127.0.0.1:16379/0",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }

    environment = bench_environment(user)

    assert environment["PATH"] == "/usr/bin"
    assert environment["SHOP_VAR_DIR"] == str(BENCH_DIR)
    assert environment["SHOP_EMBEDDED_REDIS_PORT"] == "16381"
    assert environment["DJANGO_SETTINGS_MODULE"] == "shop.settings"
    assert "CELERY_BROKER_URL" not in environment
    assert "ORDERS_SIDE_EFFECTS" not in environment


def test_environment_with_redis_url_uses_databases_of_its_own():
    environment = bench_environment({"REDIS_URL": "redis://cache:6379/0"})

    assert environment["CELERY_BROKER_URL"] == "redis://cache:6379/11"
    assert environment["ORDERS_GATEWAY_REDIS_URL"] == "redis://cache:6379/13"


def test_environment_applied_twice_is_unchanged():
    user = {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/shop",
        "REDIS_URL": "redis://cache:6379/0",
    }

    once = bench_environment(user)

    assert bench_environment(once) == once


def test_cpu_used_counts_what_no_process_of_the_benchmark_used_as_elsewhere():
    before = {"web": 10.0, "workers": 5.0, "machine": 100.0}
    after = {"web": 14.0, "workers": 6.0, "machine": 108.0}

    assert cpu_used(before, after) == {"web": 4.0, "workers": 1.0, "elsewhere": 3.0}


def test_report_shows_every_response_that_is_not_201():
    outcomes = [Outcome(201, 0.05, b'{"id": 1}'), Outcome(500, 0.01, b"")]
    phase = Phase("queue", outcomes, seconds=1.0, warm_up_failures=Counter())
    report = Report(
        clients=2,
        per_client=1,
        smtp_delay_ms=0,
        database="sqlite",
        web="uvicorn",
        workers={"emails": "2"},
        phases=[phase],
    )

    lines = report.lines()

    assert report.failed
    row = next(line for line in lines if line.startswith("queue "))
    assert row.split()[1:3] == ["2", "1"]
    assert "NOT 201 in queue mode: measured {500: 1}, warm-up {}" in "\n".join(lines)
