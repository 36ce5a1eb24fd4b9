"""The payment gateway the checkout authorizes through.

The shop talks to one small interface, ``PaymentGateway``. The only
implementation here is ``SimulatedGateway``: no money moves, anywhere. It
behaves the way card providers do where that matters to the shop: it keeps
its state outside the shop's database (in Redis, so a rolled-back checkout
does not roll back the authorization), it honours idempotency keys (the same
key returns the first authorization, never a second one), and it declines
the documented test cards.
"""

import json
import time
import uuid
from decimal import Decimal
from typing import Protocol

import redis
from django.conf import settings
from django.utils.module_loading import import_string

# Test card numbers, as on a real provider's sandbox. Any other number that
# passes the Luhn check is approved.
CARD_APPROVED = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
_DECLINES = {
    CARD_DECLINED: "card_declined",
    CARD_INSUFFICIENT_FUNDS: "insufficient_funds",
}


class InvalidCardError(ValueError):
    """The number cannot be a card number; nothing was sent to the gateway."""


class PaymentDeclinedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentGateway(Protocol):
    def authorize(
        self, *, amount: Decimal, card_number: str, idempotency_key: str
    ) -> str:
        """Hold the amount on the card and return the authorization reference."""
        ...

    def void(self, reference: str) -> None:
        """Release an authorization that will not be captured."""
        ...


def normalize_card_number(card_number: str) -> str:
    """Strip spaces and dashes; raise InvalidCardError unless it is a card."""
    digits = card_number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise InvalidCardError("a card number has 12 to 19 digits")
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    if total % 10:
        raise InvalidCardError("the card number is mistyped (checksum fails)")
    return digits


class SimulatedGateway:
    """Card authorizations kept in Redis; see the module docstring."""

    prefix = "simulated-gateway"

    def __init__(self, url: str | None = None, latency_ms: int | None = None) -> None:
        self.redis = redis.Redis.from_url(url or settings.ORDERS_GATEWAY_REDIS_URL)
        self.latency = (
            settings.ORDERS_GATEWAY_LATENCY_MS if latency_ms is None else latency_ms
        ) / 1000

    def authorize(
        self, *, amount: Decimal, card_number: str, idempotency_key: str
    ) -> str:
        digits = normalize_card_number(card_number)
        if self.latency:
            time.sleep(self.latency)
        key = f"{self.prefix}:key:{idempotency_key}"
        if reason := _DECLINES.get(digits):
            raise PaymentDeclinedError(reason)
        record = json.dumps(
            {"reference": f"auth_{uuid.uuid4().hex[:20]}", "amount": str(amount)}
        )
        # SET NX: of two requests with one key, exactly one creates the
        # authorization; the other reads it back.
        if self.redis.set(key, record, nx=True, ex=7 * 24 * 3600):
            self.redis.incr(f"{self.prefix}:authorizations")
        else:
            record = self.redis.get(key)
        stored = json.loads(record)
        if Decimal(stored["amount"]) != amount:
            raise PaymentDeclinedError("idempotency_key_reused_with_other_amount")
        return stored["reference"]

    def void(self, reference: str) -> None:
        self.redis.sadd(f"{self.prefix}:voided", reference)

    def authorization_count(self) -> int:
        return int(self.redis.get(f"{self.prefix}:authorizations") or 0)

    def voided(self) -> set[str]:
        return {
            member.decode() for member in self.redis.smembers(f"{self.prefix}:voided")
        }


def get_gateway() -> PaymentGateway:
    """Return the gateway named by ORDERS_PAYMENT_GATEWAY."""
    return import_string(settings.ORDERS_PAYMENT_GATEWAY)()
