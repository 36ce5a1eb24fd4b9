"""Tasks that fail, on a real broker and a real worker process.

The tasks are in tests/tasks.py; each keeps its calls in Redis so the test
can see what the worker did.
"""

import pytest
from django.conf import settings

from shop import deadletters
from shop.models import DeadLetter
from tests import tasks
from tests.support import Worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def worker(django_db_setup, redis_server):
    worker = Worker(["default"], name="failures").start().wait_ready()
    yield worker
    worker.stop()


@pytest.fixture
def state(request):
    client = tasks.state()
    client.flushdb()
    return client


def _letter(task_name: str) -> DeadLetter | None:
    return DeadLetter.objects.filter(task_name=task_name).first()


def test_transient_error_is_retried_with_growing_delays_then_succeeds(worker, state):
    tasks.flaky_task.delay("flaky", 2)

    wait_for(lambda: state.exists("flaky:done"), timeout=30)
    attempts = [float(value) for value in state.lrange("flaky:attempts", 0, -1)]
    assert len(attempts) == 3
    first_delay, second_delay = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert 0.9 < first_delay < second_delay
    assert second_delay > 1.9
    assert not DeadLetter.objects.exists()


def test_permanent_error_leaves_one_dead_letter_that_replays_once_fixed(worker, state):
    result = tasks.broken_task.delay("broken")

    letter = wait_for(lambda: _letter("tests.tasks.broken_task"))
    assert int(state.get("broken:calls")) == 1
    assert (letter.task_id, letter.queue, letter.attempts) == (result.id, "default", 1)
    assert letter.args == ["broken"]
    assert letter.exception == "ValueError: the product feed has a malformed row"
    assert "Traceback" in letter.traceback
    log = worker.log()
    assert (
        log.count(f"task gave up task=tests.tasks.broken_task task_id={result.id}") == 1
    )
    assert log.count("ERROR/") == log.count("task gave up")

    state.set("broken:fixed", 1)
    deadletters.replay(letter)

    wait_for(lambda: state.exists("broken:done"))
    letter.refresh_from_db()
    assert letter.replayed_at is not None
    assert deadletters.replay(letter) is None
    assert DeadLetter.objects.count() == 1


def test_hard_time_limit_leaves_a_dead_letter(worker, state):
    tasks.stuck_task.delay("stuck")

    letter = wait_for(lambda: _letter("tests.tasks.stuck_task"), timeout=20)
    assert letter.exception.startswith("TimeLimitExceeded")
    assert not state.exists("stuck:done")


def test_task_on_a_deleted_row_ends_quietly(worker, state):
    result = tasks.rename_product_task.delay(987654, "gone")

    wait_for(
        lambda: f"task skipped task=tests.tasks.rename_product_task "
        f"task_id={result.id}" in worker.log()
    )
    assert not DeadLetter.objects.exists()


def test_poison_message_is_dead_lettered_and_the_tasks_behind_it_complete(
    worker, state
):
    tasks.poison_task.delay("poison")
    for number in range(10):
        tasks.mark_task.delay("behind", number)

    letter = wait_for(lambda: _letter("tests.tasks.poison_task"), timeout=60)
    wait_for(lambda: state.scard("behind:done") == 10, timeout=30)
    assert int(state.get("poison:calls")) == settings.SHOP_TASK_MAX_DELIVERIES
    assert "delivered 6 times without finishing" in letter.exception
    assert worker.process.poll() is None
