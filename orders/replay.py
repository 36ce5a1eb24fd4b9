"""Replay the invoices of the Online Retail file through the checkout.

``manage.py replay_orders`` calls ``replay_orders``. Each sale invoice is one
``place_order`` call by its customer; each cancellation invoice cancels the
units it undoes with ``cancel_order``. Nothing here writes order rows, so a
replay takes the path a customer's checkout takes, and the side effects of
every order are queued after its commit as usual. Run the import first
(shop/importer.py): the replay orders imported products as imported
customers. The rules, with figures from the real file, are in
docs/online-retail.md:

- Invoices run in the order of their first line (the file is in date order).
- Sale lines are merged per product code. Lines of codes that are not
  products, lines with quantity <= 0 and lines priced 0 (free items; the
  import does not count them as sales either) are dropped and counted.
- The idempotency key is ``invoice:<number>``, so a second replay of the
  same invoices returns the orders of the first and creates nothing.
- Invoices without a CustomerID are rejected as ``no_customer``: checkout
  needs a customer, and one made-up guest holding a quarter of the year's
  lines would distort every per-customer figure.
- A cancellation names no original. The original is the customer's most
  recent order of this replay that still holds every cancelled code with at
  least the cancelled units, counting the units earlier cancellations of
  this replay took. ``cancel_order`` cancels those units: ``cancelled`` when
  nothing remains of the order, ``partially_cancelled`` otherwise (most
  cancellations: a few units or lines sent back).
- The n-th cancellation a replay matches to an order is applied only if the
  order has fewer than n cancellations (``cancelled_before`` otherwise), so
  a second replay of the same invoices cancels nothing twice.
"""

import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from tqdm import tqdm

from orders.models import Order, OrderLine
from orders.payments import CARD_APPROVED
from orders.services import (
    CancellationError,
    CheckoutError,
    LineRequest,
    cancel_order,
    place_order,
)
from shop.importer import (
    OnlineRetailFile,
    SourceLine,
    format_counts,
    product_code,
    skip_reason,
)
from shop.models import Customer

logger = logging.getLogger(__name__)

# Invoices kept open while reading: lines of one invoice are consecutive but
# for one invoice of the real file (542806), which another one interrupts.
OPEN_INVOICES = 8


@dataclass
class Invoice:
    number: str
    # The date of its first line, "YYYY-MM-DD HH:MM:SS".
    date: str
    customer: str
    lines: list[SourceLine] = field(default_factory=list)

    @property
    def is_cancellation(self) -> bool:
        return self.number.startswith("C")


@dataclass
class ReplayReport:
    """What became of each invoice and line, and how long checkout took."""

    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    dropped_lines: Counter[str] = field(default_factory=Counter)
    # The first error message seen for each rejection reason.
    examples: dict[str, str] = field(default_factory=dict)
    checkout_seconds: list[float] = field(default_factory=list)
    first_invoice: str = ""
    last_invoice: str = ""
    seconds: float = 0.0

    @property
    def invoices(self) -> int:
        return self.accepted.total() + self.rejected.total()

    def reject(self, reason: str, example: str = "") -> None:
        """Count a rejected invoice; keep the first message of each reason."""
        self.rejected[reason] += 1
        if example:
            self.examples.setdefault(reason, example)

    def percentile_ms(self, share: float) -> float:
        """Return the checkout time below which ``share`` of calls fall, in ms."""
        if not self.checkout_seconds:
            return 0.0
        ordered = sorted(self.checkout_seconds)
        return ordered[max(math.ceil(share * len(ordered)) - 1, 0)] * 1000

    def summary(self) -> list[str]:
        """Return the report as lines to print."""
        rate = self.invoices / self.seconds if self.seconds else 0
        return [
            f"replayed {self.invoices:,} invoices in {self.seconds:.1f} s "
            f"({rate:,.1f} invoices/s), dated {self.first_invoice} to "
            f"{self.last_invoice}",
            f"accepted {self.accepted.total():,}:",
            *format_counts(self.accepted),
            f"rejected {self.rejected.total():,}:",
            *format_counts(self.rejected),
            *(
                f"  e.g. {reason}: {example}"
                for reason, example in sorted(self.examples.items())
            ),
            f"lines dropped {self.dropped_lines.total():,}:",
            *format_counts(self.dropped_lines),
            f"checkout latency over {len(self.checkout_seconds):,} calls: "
            f"p50 {self.percentile_ms(0.50):.1f} ms, "
            f"p99 {self.percentile_ms(0.99):.1f} ms",
        ]


def read_invoices(source: OnlineRetailFile) -> Iterator[Invoice]:
    """Yield the file's invoices, each with all its lines, by first line."""
    open_invoices: dict[str, Invoice] = {}
    for line in source.lines():
        invoice = open_invoices.get(line.invoice)
        if invoice is None:
            if len(open_invoices) == OPEN_INVOICES:
                yield open_invoices.pop(next(iter(open_invoices)))
            invoice = Invoice(line.invoice, line.date, line.customer)
            open_invoices[line.invoice] = invoice
        invoice.lines.append(line)
    yield from open_invoices.values()


class _Replay:
    """The state of one replay: customers found, orders placed and cancelled."""

    def __init__(self, report: ReplayReport) -> None:
        self.report = report
        self.customers: dict[str, Customer | None] = {}
        # Per customer, the orders this replay placed or found, oldest
        # first: a cancellation looks only at orders of earlier invoices.
        self.orders: dict[int, list[int]] = {}
        # Per order, the units and the number of the cancellations this replay
        # matched to it. Matching reads these rather than the order's rows, so
        # a second replay, which finds those units already cancelled, matches
        # every cancellation to the same order as the first.
        self.cancelled_units: dict[int, Counter[str]] = {}
        self.cancellations: Counter[int] = Counter()

    def run(self, invoice: Invoice) -> None:
        """Place or cancel the order of one invoice, or count why not."""
        if not invoice.customer:
            self.report.reject("no_customer")
            return
        customer = self._customer(invoice.customer)
        if customer is None:
            self.report.reject("unknown_customer", f"CustomerID {invoice.customer}")
            return
        quantities = self._quantities(invoice)
        if not quantities:
            self.report.reject("no_product_lines")
        elif invoice.is_cancellation:
            self._cancel(customer, quantities)
        else:
            self._place(invoice, customer, quantities)

    def _customer(self, external_id: str) -> Customer | None:
        if external_id not in self.customers:
            self.customers[external_id] = Customer.objects.filter(
                external_id=external_id
            ).first()
        return self.customers[external_id]

    def _quantities(self, invoice: Invoice) -> dict[str, int]:
        """Merge the product lines of an invoice into units per product code."""
        sign = -1 if invoice.is_cancellation else 1
        quantities: dict[str, int] = {}
        for line in invoice.lines:
            code = product_code(line.stock_code)
            if code is None:
                self.report.dropped_lines[skip_reason(line.stock_code)] += 1
            elif line.quantity * sign <= 0:
                self.report.dropped_lines["wrong_sign_quantity"] += 1
            elif line.price <= 0:
                self.report.dropped_lines["zero_price"] += 1
            else:
                quantities[code] = quantities.get(code, 0) + line.quantity * sign
        return quantities

    def _place(
        self, invoice: Invoice, customer: Customer, quantities: dict[str, int]
    ) -> None:
        started = time.perf_counter()
        try:
            result = place_order(
                customer=customer,
                lines=[LineRequest(code, units) for code, units in quantities.items()],
                card_number=CARD_APPROVED,
                idempotency_key=f"invoice:{invoice.number}",
                source_invoice=invoice.number,
            )
        except CheckoutError as error:
            self.report.reject(error.code, str(error))
            return
        finally:
            self.report.checkout_seconds.append(time.perf_counter() - started)
        self.report.accepted["placed" if result.created else "placed_before"] += 1
        self.orders.setdefault(customer.pk, []).append(result.order.pk)

    def _cancel(self, customer: Customer, quantities: dict[str, int]) -> None:
        original = self._original(customer, quantities)
        if original is None:
            self.report.reject("no_original")
            return
        order_id, remaining = original
        units = self.cancelled_units.setdefault(order_id, Counter())
        units.update(quantities)
        self.cancellations[order_id] += 1
        order = Order.objects.get(pk=order_id)
        if order.cancellation_count >= self.cancellations[order_id]:
            self.report.accepted["cancelled_before"] += 1
            return

        try:
            cancel_order(order, quantities)
        except CancellationError as error:
            # Only a cancellation made outside the replay, between two runs,
            # leaves the order with less than the replay expects.
            self.report.reject(error.code, str(error))
            return
        whole = remaining == quantities
        self.report.accepted["cancelled" if whole else "partially_cancelled"] += 1

    def _original(
        self, customer: Customer, quantities: dict[str, int]
    ) -> tuple[int, dict[str, int]] | None:
        """Return the latest order still holding all of the quantities.

        With it, the units it holds (those this replay has not cancelled),
        by product code.
        """
        candidates = self.orders.get(customer.pk, [])
        # Narrow by one cancelled line first: a wholesale customer has
        # hundreds of orders, most without that product.
        code, units = next(iter(quantities.items()))
        holding = set(
            OrderLine.objects.filter(
                order_id__in=candidates, product__code=code, quantity__gte=units
            ).values_list("order_id", flat=True)
        )
        held: dict[int, dict[str, int]] = {pk: {} for pk in holding}
        for order_id, line_code, line_units in OrderLine.objects.filter(
            order_id__in=holding
        ).values_list("order_id", "product__code", "quantity"):
            left = line_units - self.cancelled_units.get(order_id, {}).get(line_code, 0)
            if left:
                held[order_id][line_code] = left
        for pk in reversed(candidates):
            lines = held.get(pk)
            if lines is not None and all(
                lines.get(line_code, 0) >= line_units
                for line_code, line_units in quantities.items()
            ):
                return pk, lines
        return None


def replay_orders(
    path: str | Path,
    *,
    limit: int | None = None,
    days: int | None = None,
    rate: float | None = None,
    progress: bool = False,
) -> ReplayReport:
    """Place and cancel the file's invoices in date order, through checkout.

    ``days`` keeps the invoices of the file's first calendar days, ``limit``
    stops after that many invoices, ``rate`` caps invoices per second.
    """
    report = ReplayReport()
    replay = _Replay(report)
    end = ""
    started = time.monotonic()
    logger.info("order replay started path=%s limit=%s days=%s", path, limit, days)
    bar = tqdm(
        total=limit,
        unit="invoice",
        desc="replay",
        file=sys.stderr,
        disable=not progress,
    )
    with bar:
        for invoice in read_invoices(OnlineRetailFile(path)):
            if days is not None and not end:
                first_day = date.fromisoformat(invoice.date[:10])
                end = (first_day + timedelta(days=days)).isoformat()
            if (end and invoice.date >= end) or report.invoices == limit:
                break
            if rate:
                # Pace from the start, so a slow invoice is made up for
                # by the next ones instead of lowering the rate.
                time.sleep(max(started + report.invoices / rate - time.monotonic(), 0))

            replay.run(invoice)
            report.first_invoice = report.first_invoice or invoice.date
            report.last_invoice = invoice.date
            bar.update()
    report.seconds = time.monotonic() - started
    logger.info(
        "order replay finished invoices=%s accepted=%s rejected=%s duration_ms=%d",
        report.invoices,
        report.accepted.total(),
        report.rejected.total(),
        report.seconds * 1000,
    )
    return report
