"""Full-text product search: writing the index and querying it.

Only the search worker calls ``index_products``; pages call
``search_products``. Both backends match every word of the query as a
prefix and rank by weighted relevance (names above descriptions).
"""

import re
from collections.abc import Iterable

from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from shop.models import Product, SearchEntry

# Letters and digits only: anything else could be query syntax.
_WORD = re.compile(r"[^\W_]+")


def index_products(product_ids: Iterable[int]) -> int:
    """Write the index entries of these products; return how many changed."""
    ids = sorted(set(product_ids))
    products = Product.objects.filter(pk__in=ids)
    now = timezone.now()
    entries = [
        SearchEntry(
            product_id=product.pk,
            code=product.code,
            name=product.name,
            description=product.description,
            price=product.price,
            in_stock=product.stock > 0 and product.is_active,
            indexed_at=now,
        )
        for product in products
    ]
    SearchEntry.objects.bulk_create(
        entries,
        update_conflicts=True,
        unique_fields=["product"],
        update_fields=[
            "code",
            "name",
            "description",
            "price",
            "in_stock",
            "indexed_at",
        ],
    )
    found = {entry.product_id for entry in entries}
    SearchEntry.objects.filter(pk__in=set(ids) - found).delete()
    return len(ids)


def stale_product_ids(limit: int) -> list[int]:
    """Return products whose index entry is missing or differs from the row."""
    differs = (
        Q(search_entry__isnull=True)
        | ~Q(search_entry__name=F("name"))
        | ~Q(search_entry__description=F("description"))
        | ~Q(search_entry__price=F("price"))
        | Q(stock__gt=0, is_active=True, search_entry__in_stock=False)
        | Q(stock=0, search_entry__in_stock=True)
        | Q(is_active=False, search_entry__in_stock=True)
    )
    return list(
        Product.objects.filter(differs)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def _words(query: str) -> list[str]:
    return _WORD.findall(query.lower())[:10]


def search_products(query: str, limit: int = 48) -> list[SearchEntry]:
    """Return index entries matching every word of the query, best first."""
    words = _words(query)
    if not words:
        return []
    if connection.vendor == "postgresql":
        sql = """
            SELECT product_id FROM shop_searchentry,
                to_tsquery('english', %s) AS query
            WHERE document @@ query
            ORDER BY ts_rank(document, query) DESC, name
            LIMIT %s
        """
        params = [" & ".join(f"{word}:*" for word in words), limit]
    else:
        sql = """
            SELECT rowid FROM shop_searchentry_fts
            WHERE shop_searchentry_fts MATCH %s
            ORDER BY bm25(shop_searchentry_fts, 10.0, 10.0, 1.0), name
            LIMIT %s
        """
        params = [" AND ".join(f'"{word}"*' for word in words), limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ranked = [row[0] for row in cursor.fetchall()]
    entries = SearchEntry.objects.in_bulk(ranked)
    return [entries[pk] for pk in ranked if pk in entries]
