"""Account emails: the welcome a new customer gets some minutes after sign-up."""

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from notifications.delivery import send_once

logger = logging.getLogger(__name__)


def welcome_key(user_id: int) -> str:
    return f"welcome:{user_id}"


def send_welcome(user_id: int) -> bool:
    """Send the user's welcome email, once; True if this call sent it."""
    user = get_user_model().objects.get(pk=user_id)
    context = {"user": user}
    message = EmailMultiAlternatives(
        subject="Welcome to the demo shop",
        body=render_to_string("notifications/email/welcome.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
    )
    return send_once(welcome_key(user.pk), message)
