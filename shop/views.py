"""Storefront pages: the catalog, search, a product and the cart."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from shop.cart import Cart, cart_total
from shop.forms import AddToCartForm, CartLineForm, SearchForm, SignUpForm
from shop.models import Product
from shop.search import search_products
from shop.services import register_customer

CATALOG_PAGE_SIZE = 24


def catalog(request: HttpRequest) -> HttpResponse:
    """List the products on sale, a page at a time."""
    products = Product.objects.filter(is_active=True).order_by("name", "pk")
    page = Paginator(products, CATALOG_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "shop/catalog.html", {"page": page})


def search(request: HttpRequest) -> HttpResponse:
    """Show what the search index holds for the query.

    Names, prices and availability come from the index entries, not from the
    products: a change appears here once the search worker has indexed it.
    """
    form = SearchForm(request.GET)
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    entries = search_products(query, limit=settings.SHOP_SEARCH_RESULTS)
    context = {
        "form": form,
        "query": query,
        "entries": entries,
        "limit": settings.SHOP_SEARCH_RESULTS,
        "capped": len(entries) == settings.SHOP_SEARCH_RESULTS,
    }
    return render(request, "shop/search.html", context)


def product_detail(request: HttpRequest, code: str) -> HttpResponse:
    product = get_object_or_404(Product, code=code, is_active=True)
    context = {"product": product, "form": AddToCartForm()}
    return render(request, "shop/product_detail.html", context)


@require_POST
def cart_add(request: HttpRequest, code: str) -> HttpResponse:
    product = get_object_or_404(Product, code=code, is_active=True)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        context = {"product": product, "form": form}
        return render(request, "shop/product_detail.html", context, status=400)

    Cart(request.session).add(product.code, form.cleaned_data["quantity"])
    messages.success(request, f"Added {product.name} to your cart.")
    return redirect("shop:cart")


def cart(request: HttpRequest) -> HttpResponse:
    """Show the cart at today's prices."""
    lines = Cart(request.session).lines()
    forms = [
        CartLineForm(initial={"code": line.code, "quantity": line.quantity})
        for line in lines
    ]
    context = {
        "rows": list(zip(lines, forms, strict=True)),
        "total": cart_total(lines),
        "has_unavailable": any(line.product is None for line in lines),
    }
    return render(request, "shop/cart.html", context)


@require_POST
def cart_update(request: HttpRequest) -> HttpResponse:
    """Set one line's quantity, or remove the line when it is zero."""
    form = CartLineForm(request.POST)
    if form.is_valid():
        Cart(request.session).set(
            form.cleaned_data["code"], form.cleaned_data["quantity"]
        )
    else:
        messages.error(request, " ".join(form.errors.get("quantity", ["Not changed."])))
    return redirect("shop:cart")


def signup(request: HttpRequest) -> HttpResponse:
    """Create an account, sign it in, and leave the welcome email to a worker."""
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        customer = register_customer(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
        )
        login(
            request, customer.user, backend="django.contrib.auth.backends.ModelBackend"
        )
        minutes = round(settings.NOTIFICATIONS_WELCOME_DELAY_SECONDS / 60)
        later = "in a few minutes" if minutes > 1 else "in a minute or so"
        messages.success(request, f"Welcome! A welcome email follows {later}.")
        return redirect("shop:catalog")
    return render(request, "registration/signup.html", {"form": form})
