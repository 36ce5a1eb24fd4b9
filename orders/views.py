"""Checkout and the customer's order pages."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from orders.forms import TEST_CARDS, CheckoutForm, card_in_groups
from orders.models import Order
from orders.progress import background_work
from orders.services import (
    CheckoutError,
    LineRequest,
    cancel_order,
    place_order,
    resend_confirmation,
)
from shop.cart import Cart, cart_total
from shop.services import customer_for

ORDERS_PAGE_SIZE = 20


def _own_orders(request: HttpRequest) -> QuerySet[Order]:
    # Every order page reads through this: another customer's order is then
    # simply not found, the same answer as an id that does not exist.
    return Order.objects.filter(customer__user=request.user)


def _render_checkout(
    request: HttpRequest,
    form: CheckoutForm,
    error: CheckoutError | None = None,
    status: int = 200,
) -> HttpResponse:
    lines = Cart(request.session).lines()
    context = {
        "form": form,
        "error": error,
        "lines": lines,
        "total": cart_total(lines),
        "test_cards": [(label, card_in_groups(number)) for label, number in TEST_CARDS],
    }
    return render(request, "orders/checkout.html", context, status=status)


@login_required
def checkout(request: HttpRequest) -> HttpResponse:
    """Show the checkout form, and place the order when it is submitted."""
    cart = Cart(request.session)
    if request.method != "POST":
        if not cart.quantities:
            messages.info(request, "Your cart is empty.")
            return redirect("shop:cart")
        return _render_checkout(
            request, CheckoutForm(initial={"idempotency_key": uuid.uuid4().hex})
        )

    form = CheckoutForm(request.POST)
    if not form.is_valid():
        return _render_checkout(request, form, status=400)
    key = form.cleaned_data["idempotency_key"]
    if not cart.quantities:
        # A resubmission after the first one succeeded finds the cart already
        # emptied; the key still names the order that submission placed.
        placed = _own_orders(request).filter(idempotency_key=key).first()
        if placed is not None:
            return redirect("orders:detail", order_id=placed.pk)
        messages.info(request, "Your cart is empty.")
        return redirect("shop:cart")
    try:
        result = place_order(
            customer=customer_for(request.user),
            lines=[
                LineRequest(code, quantity)
                for code, quantity in cart.quantities.items()
            ],
            card_number=form.cleaned_data["card_number"],
            idempotency_key=key,
        )
    except CheckoutError as error:
        # The same key again: a failed checkout creates no order and stores
        # no authorization, so the corrected retry is a fresh attempt, and a
        # double-click on it is still charged once. The card number is not
        # echoed back into the page.
        form = CheckoutForm(initial={"idempotency_key": key})
        return _render_checkout(request, form, error=error, status=error.status)

    cart.clear()
    if result.created:
        messages.success(request, "Thank you: your order is placed.")
    return redirect("orders:detail", order_id=result.order.pk)


@login_required
def order_list(request: HttpRequest) -> HttpResponse:
    orders = _own_orders(request).prefetch_related("lines")
    page = Paginator(orders, ORDERS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "orders/order_list.html", {"page": page})


@login_required
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    """Show an order and how far its background work has got."""
    order = get_object_or_404(_own_orders(request), pk=order_id)
    context = {
        "order": order,
        "lines": order.lines.select_related("product"),
        "steps": background_work(order),
    }
    return render(request, "orders/order_detail.html", context)


@login_required
@require_POST
def order_cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(_own_orders(request), pk=order_id)
    if cancel_order(order):
        messages.success(request, "Your order is cancelled; the payment is released.")
    else:
        messages.info(request, "This order was already cancelled.")
    return redirect("orders:detail", order_id=order.pk)


@login_required
@require_POST
def order_resend(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(_own_orders(request), pk=order_id)
    resend_confirmation(order, timezone.now())
    messages.success(request, "The confirmation is on its way again.")
    return redirect("orders:detail", order_id=order.pk)
