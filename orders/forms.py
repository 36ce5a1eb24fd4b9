"""The checkout form and the test cards it offers."""

from django import forms

from orders.payments import CARD_APPROVED, CARD_DECLINED, CARD_INSUFFICIENT_FUNDS

# Shown on the checkout page: the gateway is simulated and only these decline.
TEST_CARDS = [
    ("Approved", CARD_APPROVED),
    ("Declined", CARD_DECLINED),
    ("Declined: insufficient funds", CARD_INSUFFICIENT_FUNDS),
]


class CheckoutForm(forms.Form):
    card_number = forms.CharField(
        max_length=30,
        widget=forms.TextInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric"}
        ),
    )
    # Made once when the page is rendered: a second submission of the same
    # page carries the same key and is answered with the first one's order.
    idempotency_key = forms.CharField(max_length=80, widget=forms.HiddenInput)


def card_in_groups(number: str) -> str:
    """Return a card number in groups of four digits, as printed on cards."""
    return " ".join(number[start : start + 4] for start in range(0, len(number), 4))
