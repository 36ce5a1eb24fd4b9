from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.mailbox, name="mailbox"),
    path("<str:key>/", views.message_detail, name="message"),
]
