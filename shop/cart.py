"""The shopping cart, kept in the visitor's session until checkout.

The session holds product codes and quantities only; prices and names are
read from the catalog each time, so the cart never shows a stale price.
Whether the quantities can be sold is decided at checkout, under the
products' row locks, not here.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.sessions.backends.base import SessionBase

from shop.models import Product

SESSION_KEY = "cart"


@dataclass(frozen=True)
class CartLine:
    code: str
    quantity: int
    # None once the product is gone or no longer sold; checkout refuses it.
    product: Product | None

    @property
    def amount(self) -> Decimal:
        if self.product is None:
            return Decimal("0.00")
        return self.product.price * self.quantity


class Cart:
    """Product codes and quantities in one session."""

    def __init__(self, session: SessionBase) -> None:
        self.session = session

    @property
    def quantities(self) -> dict[str, int]:
        return dict(self.session.get(SESSION_KEY, {}))

    def count(self) -> int:
        """Return how many units the cart holds, without touching the database."""
        return sum(self.quantities.values())

    def add(self, code: str, quantity: int) -> None:
        quantities = self.quantities
        quantities[code] = quantities.get(code, 0) + quantity
        self._save(quantities)

    def set(self, code: str, quantity: int) -> None:
        """Set the quantity of a line in the cart; zero removes the line."""
        quantities = self.quantities
        if code not in quantities:
            return
        if quantity > 0:
            quantities[code] = quantity
        else:
            del quantities[code]
        self._save(quantities)

    def remove(self, code: str) -> None:
        self.set(code, 0)

    def clear(self) -> None:
        self.session.pop(SESSION_KEY, None)

    def lines(self) -> list[CartLine]:
        """Return the lines with their current products, in the order added."""
        quantities = self.quantities
        products = Product.objects.filter(is_active=True).in_bulk(
            list(quantities), field_name="code"
        )
        return [
            CartLine(code, quantity, products.get(code))
            for code, quantity in quantities.items()
        ]

    def _save(self, quantities: dict[str, int]) -> None:
        self.session[SESSION_KEY] = quantities


def cart_total(lines: list[CartLine]) -> Decimal:
    """Return what the lines cost at today's prices."""
    return sum((line.amount for line in lines), Decimal("0.00"))
