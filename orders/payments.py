"""The payment gateway the checkout authorizes through and subscriptions charge.

The shop talks to one small interface, ``PaymentGateway``. The only
implementation here is ``SimulatedGateway``: no money moves, anywhere. It
behaves the way card providers do where that matters to the shop: it keeps
its state outside the shop's database (in Redis, so a rolled-back checkout
does not roll back the authorization, nor a killed worker its charge), it
honours idempotency keys (the same key returns the first authorization or
charge, never a second one), and it declines the documented test cards.
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


class GatewayUnavailableError(Exception):
    """The gateway did not answer; the request may or may not have taken effect.

    Ask again with the same idempotency key: the answer is then the first
    request's, if it was made.
    """


class PaymentGateway(Protocol):
    def authorize(
        self, *, amount: Decimal, card_number: str, idempotency_key: str
    ) -> str:
        """Hold the amount on the card and return the authorization reference."""
        ...

    def void(self, reference: str) -> None:
        """Release an authorization that will not be captured."""
        ...

    def charge(self, *, amount: Decimal, card_number: str, idempotency_key: str) -> str:
        """Authorize and capture the amount at once; return the charge reference.

        Raise PaymentDeclinedError for a decline and GatewayUnavailableError
        when the outcome is unknown.
        """
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


# Runs inside Redis, so a charge is recorded whole or not at all, however the
# client dies: the key's record, the capture counter and the set of captured
# references always agree, as they would on a provider's own servers.
# KEYS: the key's record, the capture counter, the captured references, the
# replay counter. ARGV: the new record, its lifetime in seconds, its reference.
_CHARGE_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    redis.call('INCR', KEYS[2])
    redis.call('SADD', KEYS[3], ARGV[3])
    return ARGV[1]
end
redis.call('INCR', KEYS[4])
return redis.call('GET', KEYS[1])
"""


class SimulatedGateway:
    """Card authorizations and charges kept in Redis; see the module docstring."""

    prefix = "simulated-gateway"
    # How long a key is remembered. Providers keep theirs for a day or more;
    # a retry after that would be a new charge.
    key_lifetime_seconds = 7 * 24 * 3600

    def __init__(self, url: str | None = None, latency_ms: int | None = None) -> None:
        self.redis = redis.Redis.from_url(url or settings.ORDERS_GATEWAY_REDIS_URL)
        self.latency = (
            settings.ORDERS_GATEWAY_LATENCY_MS if latency_ms is None else latency_ms
        ) / 1000
        self._charge_script = self.redis.register_script(_CHARGE_SCRIPT)

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
        try:
            if self.redis.set(key, record, nx=True, ex=7 * 24 * 3600):
                self.redis.incr(f"{self.prefix}:authorizations")
            else:
                record = self.redis.get(key)
        except redis.RedisError as error:
            # The simulated provider's own store is out of reach: to the shop
            # that is a provider that does not answer.
            raise GatewayUnavailableError(str(error)) from error
        stored = json.loads(record)
        if Decimal(stored["amount"]) != amount:
            raise PaymentDeclinedError("idempotency_key_reused_with_other_amount")
        return stored["reference"]

    def void(self, reference: str) -> None:
        self.redis.sadd(f"{self.prefix}:voided", reference)

    def charge(self, *, amount: Decimal, card_number: str, idempotency_key: str) -> str:
        digits = normalize_card_number(card_number)
        # Half the round trip before the capture and half after it: a worker
        # killed in the second half leaves a charge it never heard about,
        # which is what a retry with the same key has to find.
        if self.latency:
            time.sleep(self.latency / 2)
        if reason := _DECLINES.get(digits):
            raise PaymentDeclinedError(reason)
        reference = f"ch_{uuid.uuid4().hex[:20]}"
        record = json.dumps({"reference": reference, "amount": str(amount)})
        try:
            stored = json.loads(
                self._charge_script(
                    keys=[
                        f"{self.prefix}:charge-key:{idempotency_key}",
                        f"{self.prefix}:captures",
                        f"{self.prefix}:captured",
                        f"{self.prefix}:charge-replays",
                    ],
                    args=[record, self.key_lifetime_seconds, reference],
                )
            )
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise GatewayUnavailableError(str(error)) from error
        if self.latency:
            time.sleep(self.latency / 2)
        if Decimal(stored["amount"]) != amount:
            raise PaymentDeclinedError("idempotency_key_reused_with_other_amount")
        return stored["reference"]

    def capture_count(self) -> int:
        """Return how many charges captured money; a replayed key is not one."""
        return int(self.redis.get(f"{self.prefix}:captures") or 0)

    def captured_references(self) -> set[str]:
        return {
            member.decode() for member in self.redis.smembers(f"{self.prefix}:captured")
        }

    def charge_replay_count(self) -> int:
        """Return how many charges were answered from an earlier one's key."""
        return int(self.redis.get(f"{self.prefix}:charge-replays") or 0)

    def authorization_count(self) -> int:
        return int(self.redis.get(f"{self.prefix}:authorizations") or 0)

    def voided(self) -> set[str]:
        return {
            member.decode() for member in self.redis.smembers(f"{self.prefix}:voided")
        }


def get_gateway() -> PaymentGateway:
    """Return the gateway named by ORDERS_PAYMENT_GATEWAY."""
    return import_string(settings.ORDERS_PAYMENT_GATEWAY)()
