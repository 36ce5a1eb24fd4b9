"""Stock bookkeeping done by the inventory worker after orders commit.

Checkout already moved the stock; this books each change as a movement
with the stock level seen after it, and warns when a product runs low.
"""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from shop.models import Product, StockMovement

logger = logging.getLogger(__name__)


def record_stock_movements(reference: str, changes: list[tuple[int, int]]) -> int:
    """Book each (product id, quantity) change once; return how many were new."""
    booked = 0
    for product_id, quantity in changes:
        stock = Product.objects.filter(pk=product_id).values_list("stock", flat=True)
        if not stock:
            logger.info("stock movement skipped product_id=%s gone", product_id)
            continue
        try:
            with transaction.atomic():
                StockMovement.objects.create(
                    product_id=product_id,
                    reference=reference,
                    quantity=quantity,
                    stock_at_booking=stock[0],
                )
        except IntegrityError:
            continue
        booked += 1
        if quantity < 0 and stock[0] <= settings.SHOP_LOW_STOCK_THRESHOLD:
            logger.warning("low stock product_id=%s stock=%s", product_id, stock[0])
    return booked
