"""The site's URLs: storefront, checkout and orders, the API, admin, demo mail."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from orders import api as orders_api
from shop import api as shop_api
from shop import views

storefront = [
    path("", views.catalog, name="catalog"),
    path("search/", views.search, name="search"),
    path("products/<str:code>/", views.product_detail, name="product"),
    path("products/<str:code>/add/", views.cart_add, name="cart-add"),
    path("cart/", views.cart, name="cart"),
    path("cart/update/", views.cart_update, name="cart-update"),
]

api = [
    path("orders/", orders_api.OrderListCreateView.as_view(), name="order-list"),
    path("orders/<int:pk>/", orders_api.OrderDetailView.as_view(), name="order-detail"),
    path("products/", shop_api.ProductSearchView.as_view(), name="product-search"),
    path("token/", obtain_auth_token, name="token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]

urlpatterns = [
    path("", include((storefront, "shop"))),
    path("", include("orders.urls")),
    path("mail/", include("notifications.urls")),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include((api, "api"))),
    path("admin/", admin.site.urls),
]
