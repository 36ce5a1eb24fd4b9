from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from shop.models import Customer, Product


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    user = factory.SubFactory(UserFactory)
    country = "United Kingdom"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    code = factory.Sequence(lambda n: f"{10000 + n}")
    name = factory.Sequence(lambda n: f"Test product {n}")
    description = ""
    price = Decimal("2.50")
    stock = 100
