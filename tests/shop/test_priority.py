"""One worker on critical,default,low takes critical work first.

The worker is the article's: a single process consuming the three queues,
named in that order. Redis serves them in that order because the transport
runs with queue_order_strategy "priority" and the worker prefetches one
message at a time.
"""

import pytest

from tests import tasks
from tests.support import Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def priority_worker(django_db_setup, broker):
    worker = Worker(["critical", "default", "low"], name="priority").start()
    yield worker.wait_ready()
    worker.stop()


def test_critical_tasks_all_start_before_three_more_low_tasks(priority_worker):
    state = tasks.state()
    state.delete("order:started", "order:done")
    for number in range(1000):
        tasks.mark_task.apply_async(("order", number, 0.01), queue="low")
    wait_for(lambda: state.llen("order:started") >= 20)

    started_before = state.llen("order:started")
    for number in range(10):
        tasks.mark_task.apply_async(("order", 10_000 + number, 0.01), queue="critical")
    wait_for(lambda: state.scard("order:done") >= started_before + 15)

    after = [int(value) for value in state.lrange("order:started", started_before, -1)]
    last_critical = max(i for i, number in enumerate(after) if number >= 10_000)
    low_before_last_critical = [n for n in after[:last_critical] if n < 10_000]
    assert len(low_before_last_critical) < 3, after[: last_critical + 1]
