"""The dead-letter store: listing, replaying, purging, and the depth alert."""

import logging
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from shop import deadletters
from shop.celery import app, visibility_timeout_problems
from shop.models import DeadLetter
from tests.support import Worker, queued_task_names


def _letter(number: int = 0, **fields) -> DeadLetter:
    defaults = {
        "task_name": "orders.tasks.send_order_confirmation_task",
        "task_id": f"task-{number}",
        "queue": "emails",
        "args": [number],
        "exception": "SMTPDataError: rejected",
        "attempts": 3,
    }
    return DeadLetter.objects.create(**(defaults | fields))


@pytest.fixture
def threshold(settings):
    settings.SHOP_DEAD_LETTER_ALERT_DEPTH = 3
    settings.ADMINS = ["oncall@example.com"]


@pytest.mark.django_db
def test_depth_alert_fires_once_per_episode(threshold, caplog):
    for number in range(4):
        _letter(number)

    with caplog.at_level(logging.ERROR, logger="shop.deadletters"):
        assert deadletters.check_depth() is True
        assert deadletters.check_depth() is True

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["oncall@example.com"]
    assert "4 dead letters waiting" in mail.outbox[0].subject
    assert [r.getMessage() for r in caplog.records] == [
        "dead letter depth above threshold depth=4 threshold=3"
    ]


@pytest.mark.django_db
def test_depth_alert_fires_again_after_the_depth_went_back_to_normal(threshold):
    letters = [_letter(number) for number in range(4)]
    deadletters.check_depth()
    letters[0].delete()
    assert deadletters.check_depth() is False

    _letter(9)

    assert deadletters.check_depth() is True
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_replayed_letters_do_not_count_towards_the_depth(threshold):
    for number in range(4):
        _letter(number, replayed_at=timezone.now())

    assert deadletters.check_depth() is False
    assert mail.outbox == []


@pytest.mark.django_db
def test_command_lists_filters_by_task_queue_and_age(capsys):
    old = _letter(1)
    DeadLetter.objects.filter(pk=old.pk).update(
        failed_at=timezone.now() - timedelta(days=2)
    )
    _letter(2, task_name="shop.tasks.update_search_index_task", queue="search")

    call_command("deadletters", "list", "--queue", "emails", "--older-than", "1d")

    output = capsys.readouterr().out
    assert "orders.tasks.send_order_confirmation_task" in output
    assert "update_search_index_task" not in output
    assert output.strip().endswith("1 dead letters")


@pytest.mark.django_db
def test_command_replays_to_the_letter_queue_once(broker, capsys):
    letter = _letter(5)

    call_command("deadletters", "replay", "--task", letter.task_name)
    call_command("deadletters", "replay")

    assert queued_task_names(broker, "emails") == [letter.task_name]
    letter.refresh_from_db()
    assert letter.replayed_at is not None and letter.replay_task_id
    assert "1 dead letters replayed" in capsys.readouterr().out


@pytest.mark.django_db
def test_command_purges_only_the_selected_letters():
    _letter(1)
    _letter(2, queue="search")

    call_command("deadletters", "purge", "--queue", "search")

    assert list(DeadLetter.objects.values_list("queue", flat=True)) == ["emails"]


def test_command_refuses_an_age_it_cannot_read():
    with pytest.raises(Exception, match="30m, 12h, 7d"):
        call_command("deadletters", "list", "--older-than", "yesterday")


@pytest.mark.django_db
def test_every_task_limit_is_below_the_visibility_timeout():
    app.loader.import_default_modules()

    assert visibility_timeout_problems(app) == []


@pytest.mark.django_db
def test_worker_refuses_to_start_with_a_visibility_timeout_below_a_limit(
    django_db_setup, redis_server
):
    worker = Worker(["low"], name="short-vt", SHOP_VISIBILITY_TIMEOUT_SECONDS="60")

    worker.start().process.wait(60)

    assert worker.process.returncode != 0
    log = worker.log()
    assert "not less than the broker's visibility timeout of 60s" in log
    assert "SHOP_VISIBILITY_TIMEOUT_SECONDS" in log


@pytest.mark.django_db
def test_purge_clears_replayed_letters_too():
    _letter(1, replayed_at=timezone.now())
    _letter(2)

    call_command("deadletters", "purge", "--queue", "emails")

    assert not DeadLetter.objects.exists()
