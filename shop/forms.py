"""Forms of the storefront: search, the cart's quantities, and sign-up."""

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")


class AddToCartForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, initial=1)

    def clean_quantity(self) -> int:
        # Read here, not at import, so a test's override of the limit applies.
        quantity = self.cleaned_data["quantity"]
        if quantity > settings.ORDERS_MAX_LINE_QUANTITY:
            raise forms.ValidationError(
                f"At most {settings.ORDERS_MAX_LINE_QUANTITY} of a product per order."
            )
        return quantity


class CartLineForm(AddToCartForm):
    """A new quantity for a line of the cart; zero removes the line."""

    code = forms.CharField(max_length=20, widget=forms.HiddenInput)
    quantity = forms.IntegerField(min_value=0)


class SignUpForm(UserCreationForm):
    email = forms.EmailField()

    class Meta(UserCreationForm.Meta):
        fields = ["username", "email"]
