from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_list, name="list"),
    path("orders/<int:order_id>/", views.order_detail, name="detail"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="cancel"),
    path("orders/<int:order_id>/resend/", views.order_resend, name="resend"),
]
