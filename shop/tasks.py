"""Storefront work done by workers: stock bookkeeping, search index, sweeps.

Stock and index tasks are consumers of order events (orders/events.py); the
index sweep repairs any entry that a lost or failed update left behind, and
the outbox sweep publishes the event messages a broker outage held back
(shop/outbox.py).
"""

from celery import shared_task
from celery.utils.log import get_task_logger

from shop import deadletters, inventory, outbox, search

logger = get_task_logger(__name__)


@shared_task
def record_stock_movements_task(reference: str, changes: list[tuple[int, int]]) -> None:
    booked = inventory.record_stock_movements(reference, changes)
    logger.info("stock movements booked reference=%s new=%s", reference, booked)


@shared_task
def update_search_index_task(product_ids: list[int]) -> None:
    count = search.index_products(product_ids)
    logger.info("search index updated products=%s", count)


@shared_task
def reindex_stale_products_task(batch_size: int = 5000) -> None:
    stale = search.stale_product_ids(limit=batch_size)
    if stale:
        search.index_products(stale)
    logger.info("search index sweep reindexed=%s", len(stale))


@shared_task
def check_dead_letter_depth_task() -> None:
    deadletters.check_depth()


@shared_task
def relay_outbox_task() -> None:
    outbox.sweep()
