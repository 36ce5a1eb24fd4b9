"""Subscription charges: each billing period charged once, whatever happens.

The first tests call the billing functions directly. The rest run the
charge task on real worker processes and a real broker: messages delivered
three times to two workers at once, and pool processes killed with SIGKILL
in the middle of charges. The simulated gateway counts its captures in
Redis, which outlives each test, so the tests compare counts before and
after. Every test commits (transaction=True): the gateway's keys name
subscription ids, and committed ids are never handed out twice.
"""

import logging
import time
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO

import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from orders.billing import charge_key, charge_subscription, due_periods, utc_today
from orders.models import Invoice, Subscription
from orders.payments import (
    CARD_APPROVED,
    CARD_DECLINED,
    GatewayUnavailableError,
    SimulatedGateway,
)
from orders.services import cancel_subscription, subscribe
from orders.tasks import bill_due_subscriptions_task, charge_subscription_task
from shop.models import DeadLetter
from shop.queues import ROUTES
from tests.factories import CustomerFactory
from tests.support import Worker, queued_messages, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

AMOUNT = Decimal("12.00")


@pytest.fixture
def gateway():
    return SimulatedGateway(latency_ms=0)


@pytest.fixture
def today():
    return utc_today()


def _subscribe(card_number=CARD_APPROVED, start=None, customer=None):
    return subscribe(
        customer=customer or CustomerFactory(),
        plan="Tea of the month",
        amount=AMOUNT,
        card_number=card_number,
        start=start,
    )


def _subscriptions(count, start):
    customer = CustomerFactory()
    return Subscription.objects.bulk_create(
        Subscription(
            customer=customer,
            plan=f"plan {number}",
            amount=AMOUNT,
            card_number=CARD_APPROVED,
            started_on=start,
            current_period_start=start,
        )
        for number in range(count)
    )


def _billing_log(caplog):
    return [
        (level, message)
        for name, level, message in caplog.record_tuples
        if name == "orders.billing"
    ]


class _CountingCharges:
    """Count the calls that reach the gateway's charge, then let them through."""

    def __init__(self, monkeypatch):
        self.calls = 0
        charge = SimulatedGateway.charge

        def counted(gateway, **kwargs):
            self.calls += 1
            return charge(gateway, **kwargs)

        monkeypatch.setattr(SimulatedGateway, "charge", counted)


# --- The billing functions, called directly --------------------------------


def test_charge_pays_the_period_and_moves_the_subscription_on(gateway, today):
    subscription = _subscribe(start=today)
    captures = gateway.capture_count()

    invoice = charge_subscription(subscription.pk, today)

    subscription.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.payment_reference in gateway.captured_references()
    assert (invoice.amount, invoice.attempts) == (AMOUNT, 1)
    assert invoice.paid_at is not None
    assert gateway.capture_count() == captures + 1
    assert subscription.current_period_start == invoice.period_end
    assert invoice.period_end == subscription.period_after(today)


def test_declined_card_fails_the_invoice_and_captures_nothing(gateway, today, caplog):
    subscription = _subscribe(card_number=CARD_DECLINED, start=today)
    captures = gateway.capture_count()

    invoice = charge_subscription(subscription.pk, today)

    subscription.refresh_from_db()
    assert (invoice.status, invoice.failure_reason) == (
        Invoice.Status.FAILED,
        "card_declined",
    )
    assert invoice.payment_reference == ""
    assert gateway.capture_count() == captures
    assert subscription.current_period_start == today
    assert _billing_log(caplog) == [
        (
            logging.WARNING,
            f"charge declined invoice_id={invoice.pk} subscription_id="
            f"{subscription.pk} period_start={today} reason=card_declined attempts=1",
        )
    ]


def test_paid_period_is_not_sent_to_the_gateway_again(monkeypatch, today, caplog):
    subscription = _subscribe(start=today)
    paid = charge_subscription(subscription.pk, today)
    charges = _CountingCharges(monkeypatch)
    caplog.clear()

    again = charge_subscription(subscription.pk, today)

    assert charges.calls == 0
    assert again == paid
    assert (again.status, again.attempts) == (Invoice.Status.PAID, 1)
    assert _billing_log(caplog) == [
        (
            logging.INFO,
            f"charge skipped subscription_id={subscription.pk} "
            f"period_start={today} reason=already_paid",
        )
    ]


def test_charge_after_a_worker_died_past_the_capture_records_that_capture(
    gateway, today
):
    # As a worker killed between the gateway's answer and its commit leaves
    # things: the period claimed (PENDING), the money captured under its key.
    subscription = _subscribe(start=today)
    Invoice.objects.create(
        subscription=subscription,
        period_start=today,
        period_end=subscription.period_after(today),
        amount=AMOUNT,
    )
    captured = gateway.charge(
        amount=AMOUNT,
        card_number=CARD_APPROVED,
        idempotency_key=charge_key(subscription.pk, today),
    )
    captures = gateway.capture_count()

    invoice = charge_subscription(subscription.pk, today)

    assert (invoice.status, invoice.payment_reference) == (
        Invoice.Status.PAID,
        captured,
    )
    assert gateway.capture_count() == captures
    assert Invoice.objects.count() == 1


def test_unanswered_gateway_leaves_the_invoice_pending_for_the_retry(
    monkeypatch, gateway, today
):
    subscription = _subscribe(start=today)

    def unanswered(gateway, **kwargs):
        raise GatewayUnavailableError("read timed out")

    with monkeypatch.context() as patch:
        patch.setattr(SimulatedGateway, "charge", unanswered)
        with pytest.raises(GatewayUnavailableError):
            charge_subscription(subscription.pk, today)

    pending = Invoice.objects.get(subscription=subscription)
    assert (pending.status, pending.attempts) == (Invoice.Status.PENDING, 1)
    assert pending.failure_reason == "gateway unavailable: read timed out"
    assert due_periods(today) == [(subscription.pk, today)]

    retried = charge_subscription(subscription.pk, today)

    assert (retried.pk, retried.status, retried.attempts) == (
        pending.pk,
        Invoice.Status.PAID,
        2,
    )
    assert retried.failure_reason == ""


def test_declined_period_is_tried_again_only_after_the_retry_interval(
    monkeypatch, today
):
    subscription = _subscribe(card_number=CARD_DECLINED, start=today)
    declined = charge_subscription(subscription.pk, today)
    charges = _CountingCharges(monkeypatch)

    duplicate = charge_subscription(subscription.pk, today)

    assert charges.calls == 0
    assert (duplicate.status, duplicate.attempts) == (Invoice.Status.FAILED, 1)
    assert due_periods(today) == []

    hours = settings.ORDERS_BILLING_DECLINE_RETRY_HOURS + 1
    Invoice.objects.filter(pk=declined.pk).update(
        last_attempt_at=timezone.now() - timedelta(hours=hours)
    )
    Subscription.objects.filter(pk=subscription.pk).update(card_number=CARD_APPROVED)

    retried = charge_subscription(subscription.pk, today)

    assert charges.calls == 1
    assert (retried.status, retried.attempts) == (Invoice.Status.PAID, 2)


def test_cancelled_subscription_is_not_charged(monkeypatch, today):
    subscription = _subscribe(start=today)
    cancel_subscription(subscription)
    charges = _CountingCharges(monkeypatch)

    invoice = charge_subscription(subscription.pk, today)

    assert invoice is None
    assert charges.calls == 0
    assert not Invoice.objects.exists()


def test_cancelled_subscription_still_settles_a_period_with_an_unknown_outcome(
    gateway, today
):
    subscription = _subscribe(start=today)
    Invoice.objects.create(
        subscription=subscription,
        period_start=today,
        period_end=subscription.period_after(today),
        amount=AMOUNT,
    )
    cancel_subscription(subscription)

    invoice = charge_subscription(subscription.pk, today)

    assert invoice.status == Invoice.Status.PAID
    assert invoice.payment_reference in gateway.captured_references()


@pytest.mark.parametrize(
    ("days_from_today", "reason"), [(1, "not_due"), (-31, "not_current_period")]
)
def test_charge_for_a_period_other_than_the_due_one_is_refused(
    monkeypatch, today, caplog, days_from_today, reason
):
    subscription = _subscribe(start=today)
    period_start = today + timedelta(days=days_from_today)
    if reason == "not_due":
        Subscription.objects.filter(pk=subscription.pk).update(
            current_period_start=period_start
        )
    charges = _CountingCharges(monkeypatch)

    invoice = charge_subscription(subscription.pk, period_start)

    assert invoice is None
    assert charges.calls == 0
    assert _billing_log(caplog) == [
        (
            logging.WARNING,
            f"charge skipped subscription_id={subscription.pk} "
            f"period_start={period_start} reason={reason}",
        )
    ]


def test_due_periods_are_the_started_unpaid_ones_of_active_subscriptions(today):
    customer = CustomerFactory()
    due_today = _subscribe(start=today, customer=customer)
    behind = _subscribe(start=today - timedelta(days=40), customer=customer)
    pending = _subscribe(start=today, customer=customer)
    Invoice.objects.create(
        subscription=pending, period_start=today, period_end=today, amount=AMOUNT
    )
    _subscribe(start=today + timedelta(days=1), customer=customer)
    cancel_subscription(_subscribe(start=today, customer=customer))
    paid = _subscribe(start=today, customer=customer)
    charge_subscription(paid.pk, today)
    declined_now = _subscribe(card_number=CARD_DECLINED, start=today, customer=customer)
    charge_subscription(declined_now.pk, today)
    declined_long_ago = _subscribe(
        card_number=CARD_DECLINED, start=today, customer=customer
    )
    charge_subscription(declined_long_ago.pk, today)
    Invoice.objects.filter(subscription=declined_long_ago).update(
        last_attempt_at=timezone.now() - timedelta(days=2)
    )

    periods = due_periods(today)

    assert periods == [
        (due_today.pk, today),
        (behind.pk, behind.started_on),
        (pending.pk, today),
        (declined_long_ago.pk, today),
    ]


def test_monthly_periods_keep_the_day_of_the_month_they_started_on():
    subscription = Subscription(started_on=date(2024, 1, 31))

    starts = [date(2024, 1, 31)]
    for _ in range(3):
        starts.append(subscription.period_after(starts[-1]))

    assert starts == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
    assert subscription.period_after(date(2024, 12, 31)) == date(2025, 1, 31)


def test_billing_tasks_are_routed_and_the_run_is_scheduled_with_an_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["bill-due-subscriptions"]

    assert ROUTES["orders.tasks.charge_subscription_task"] == "critical"
    assert ROUTES["orders.tasks.bill_due_subscriptions_task"] == "low"
    assert entry["task"] == bill_due_subscriptions_task.name
    assert 0 < entry["options"]["expires"] < entry["schedule"]
    assert charge_subscription_task.autoretry_for == (GatewayUnavailableError,)


def test_seed_demo_starts_the_demo_subscriptions_once(today):
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())

    subscriptions = Subscription.objects.select_related("customer__user")
    assert sorted(
        (s.customer.user.username, s.card_last4, s.current_period_start == today)
        for s in subscriptions
    ) == [("alice", "4242", False), ("alice", "4242", True), ("bob", "0002", True)]


def test_admin_shows_subscriptions_and_their_invoices_read_only(admin_client, today):
    subscription = _subscribe(start=today)
    invoice = charge_subscription(subscription.pk, today)

    pages = {
        "subscriptions": admin_client.get(
            reverse("admin:orders_subscription_changelist"), {"q": "Tea"}
        ),
        "subscription": admin_client.get(
            reverse("admin:orders_subscription_change", args=[subscription.pk])
        ),
        "invoices": admin_client.get(reverse("admin:orders_invoice_changelist")),
        "invoice": admin_client.get(
            reverse("admin:orders_invoice_change", args=[invoice.pk])
        ),
    }

    assert {name: page.status_code for name, page in pages.items()} == dict.fromkeys(
        pages, 200
    )
    assert invoice.payment_reference in pages["invoices"].content.decode()
    assert invoice.payment_reference in pages["subscription"].content.decode()
    assert not pages["invoice"].context["has_change_permission"]
    assert all(CARD_APPROVED not in page.content.decode() for page in pages.values())


# --- On real workers -------------------------------------------------------


@pytest.fixture(scope="module")
def billing_workers(django_db_setup, redis_server):
    """Two worker processes with two pool processes each, on critical.

    The first also takes low, where the billing run goes. Each charge waits
    50 ms at the gateway, around the capture, so kills land mid-charge.
    """
    workers = [
        Worker(
            ["critical", "low"],
            name="billing-1",
            concurrency=2,
            ORDERS_GATEWAY_LATENCY_MS="50",
        ),
        Worker(
            ["critical"],
            name="billing-2",
            concurrency=2,
            ORDERS_GATEWAY_LATENCY_MS="50",
        ),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.wait_ready()
    yield workers
    for worker in workers:
        worker.stop()


def _logs(workers):
    return "".join(worker.log() for worker in workers)


def _paid():
    return Invoice.objects.filter(status=Invoice.Status.PAID).count()


def _queues_empty(broker):
    return not queued_messages(broker, "critical") and not broker.hlen("unacked")


def test_billing_run_charges_each_due_period_and_no_other(
    billing_workers, broker, gateway, today
):
    due = [_subscribe(start=today) for _ in range(3)]
    later = _subscribe(start=today + timedelta(days=3))
    cancelled = _subscribe(start=today)
    cancel_subscription(cancelled)
    captures = gateway.capture_count()

    bill_due_subscriptions_task.delay()

    wait_for(lambda: _paid() == 3)
    assert sorted(Invoice.objects.values_list("subscription", flat=True)) == [
        subscription.pk for subscription in due
    ]
    assert gateway.capture_count() == captures + 3
    assert "billing run sent charges=3" in _logs(billing_workers)
    assert not Invoice.objects.filter(subscription__in=[later, cancelled]).exists()


def test_declined_charge_on_a_worker_is_recorded_and_leaves_no_dead_letter(
    billing_workers, today
):
    subscription = _subscribe(card_number=CARD_DECLINED, start=today)

    result = charge_subscription_task.delay(subscription.pk, today.isoformat())

    invoice = wait_for(
        lambda: Invoice.objects.filter(
            subscription=subscription, status=Invoice.Status.FAILED
        ).first()
    )
    wait_for(lambda: f"Task {charge_subscription_task.name}[{result.id}] succeeded"
             in _logs(billing_workers))  # fmt: skip
    assert invoice.failure_reason == "card_declined"
    assert not DeadLetter.objects.exists()
    log = _logs(billing_workers)
    assert (
        f"charge declined invoice_id={invoice.pk} subscription_id={subscription.pk}"
        in log
    )
    assert "task gave up" not in log


def test_each_charge_delivered_three_times_to_two_workers_is_captured_once(
    billing_workers, broker, gateway, today
):
    subscriptions = _subscriptions(200, start=today)
    captures = gateway.capture_count()
    captured_before = gateway.captured_references()
    skips_before = _logs(billing_workers).count("reason=already_paid")

    # The three copies of one charge go out back to back, so two or more of
    # them usually run at the same moment in different processes.
    for subscription in subscriptions:
        for _ in range(3):
            charge_subscription_task.delay(subscription.pk, today.isoformat())

    # Every copy has run once 400 have found their period paid; every copy
    # is acknowledged once the queue and the unacknowledged set are empty.
    wait_for(
        lambda: _logs(billing_workers).count("reason=already_paid") - skips_before
        >= 400
        and _queues_empty(broker),
        timeout=60,
    )
    assert _paid() == Invoice.objects.count() == 200
    assert gateway.capture_count() - captures == 200
    assert gateway.captured_references() - captured_before == set(
        Invoice.objects.values_list("payment_reference", flat=True)
    )
    assert (
        Subscription.objects.filter(
            current_period_start=subscriptions[0].period_after(today)
        ).count()
        == 200
    )
    assert _logs(billing_workers).count("reason=already_paid") - skips_before == 400
    assert not DeadLetter.objects.exists()


def _kill_pools_after_captures(workers, gateway, rounds):
    """SIGKILL every pool process just after a capture, `rounds` times.

    Each round waits for the gateway's capture count to move and kills at
    once: the process that captured dies inside the gateway call, between
    its capture and its commit, and the others die wherever they are. Return
    the number of processes killed.
    """
    killed = 0
    for _ in range(rounds):
        # Let the pools replace their processes and take messages again.
        time.sleep(0.2)
        processes = [
            child
            for worker in workers
            for child in psutil.Process(worker.process.pid).children()
        ]
        seen = gateway.capture_count()
        wait_for(
            lambda seen=seen: gateway.capture_count() > seen,
            timeout=20,
            interval=0.001,
        )
        for process in processes:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                continue
            killed += 1
    return killed


def test_killing_pool_processes_mid_charge_loses_no_charge_and_doubles_none(
    billing_workers, broker, gateway, today
):
    subscriptions = _subscriptions(100, start=today)
    captures = gateway.capture_count()
    captured_before = gateway.captured_references()
    replays = gateway.charge_replay_count()

    for subscription in subscriptions:
        charge_subscription_task.delay(subscription.pk, today.isoformat())
    killed = _kill_pools_after_captures(billing_workers, gateway, rounds=5)

    wait_for(lambda: _paid() == 100, timeout=60)
    wait_for(lambda: _queues_empty(broker))
    assert killed >= 5
    assert Invoice.objects.count() == 100
    assert gateway.capture_count() - captures == 100
    assert gateway.captured_references() - captured_before == set(
        Invoice.objects.values_list("payment_reference", flat=True)
    )
    assert (
        Subscription.objects.filter(
            current_period_start=subscriptions[0].period_after(today)
        ).count()
        == 100
    )
    # A redelivered charge found a capture whose worker had died: the path
    # that must not capture twice was taken.
    assert gateway.charge_replay_count() > replays
    assert not DeadLetter.objects.exists()
    assert all(worker.process.poll() is None for worker in billing_workers)
