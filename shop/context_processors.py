"""Values every page's layout needs."""

from django.conf import settings
from django.http import HttpRequest

from shop.cart import Cart


def cart(request: HttpRequest) -> dict[str, int]:
    """Add the number of units in the visitor's cart, for the navigation bar."""
    return {"cart_count": Cart(request.session).count()}


def demo_links(request: HttpRequest) -> dict[str, object]:
    """Add the demo's tool links (Flower, the caught mail) while DEBUG is on."""
    return {
        "flower_url": settings.SHOP_FLOWER_URL if settings.DEBUG else "",
        "show_mailbox_link": settings.DEBUG and settings.NOTIFICATIONS_MAILBOX_PAGE,
    }
