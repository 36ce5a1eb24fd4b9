"""The simulated gateway's charges: idempotency keys, declines, the records.

The gateway keeps its state in Redis, which outlives each test, so every
test uses fresh idempotency keys and compares counts before and after.
"""

import uuid
from decimal import Decimal

import pytest

from orders.payments import (
    CARD_APPROVED,
    CARD_DECLINED,
    CARD_INSUFFICIENT_FUNDS,
    PaymentDeclinedError,
    SimulatedGateway,
)


@pytest.fixture
def gateway():
    return SimulatedGateway(latency_ms=0)


@pytest.fixture
def key():
    return f"test:{uuid.uuid4().hex}"


def test_charge_with_a_used_key_returns_the_first_charge_and_captures_once(
    gateway, key
):
    captures = gateway.capture_count()
    replays = gateway.charge_replay_count()

    first = gateway.charge(
        amount=Decimal("12.00"), card_number=CARD_APPROVED, idempotency_key=key
    )
    second = gateway.charge(
        amount=Decimal("12.00"), card_number=CARD_APPROVED, idempotency_key=key
    )

    assert first == second
    assert first.startswith("ch_")
    assert gateway.capture_count() == captures + 1
    assert gateway.charge_replay_count() == replays + 1
    assert first in gateway.captured_references()


@pytest.mark.parametrize(
    ("card_number", "reason"),
    [(CARD_DECLINED, "card_declined"), (CARD_INSUFFICIENT_FUNDS, "insufficient_funds")],
)
def test_charge_on_a_decline_test_card_is_declined_and_captures_nothing(
    gateway, key, card_number, reason
):
    captures = gateway.capture_count()

    with pytest.raises(PaymentDeclinedError) as declined:
        gateway.charge(
            amount=Decimal("12.00"), card_number=card_number, idempotency_key=key
        )

    assert declined.value.reason == reason
    assert gateway.capture_count() == captures


def test_charge_with_a_used_key_and_another_amount_is_refused(gateway, key):
    gateway.charge(
        amount=Decimal("12.00"), card_number=CARD_APPROVED, idempotency_key=key
    )
    captures = gateway.capture_count()

    with pytest.raises(PaymentDeclinedError, match="reused_with_other_amount"):
        gateway.charge(
            amount=Decimal("13.00"), card_number=CARD_APPROVED, idempotency_key=key
        )

    assert gateway.capture_count() == captures


def test_charge_and_authorization_keys_do_not_share_records(gateway, key):
    authorization = gateway.authorize(
        amount=Decimal("12.00"), card_number=CARD_APPROVED, idempotency_key=key
    )

    charge = gateway.charge(
        amount=Decimal("12.00"), card_number=CARD_APPROVED, idempotency_key=key
    )

    assert authorization != charge
    assert charge in gateway.captured_references()
    assert authorization not in gateway.captured_references()
