import uuid

import pytest

from orders.payments import CARD_APPROVED
from orders.services import LineRequest, place_order
from tests.factories import CustomerFactory


@pytest.fixture
def order(product):
    """Two units of the module's `product`, ordered by a new customer."""
    result = place_order(
        customer=CustomerFactory(),
        lines=[LineRequest(product.code, 2)],
        card_number=CARD_APPROVED,
        idempotency_key=uuid.uuid4().hex,
    )
    return result.order
