"""The orders API: checkout and the customer's own orders, as JSON.

Checkout calls the same ``place_order`` as the checkout page; this module
only turns JSON into its arguments and its result or ``CheckoutError`` into
a response.
"""

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from orders.models import Order, OrderLine
from orders.payments import CARD_APPROVED, CARD_DECLINED, CARD_INSUFFICIENT_FUNDS
from orders.progress import background_work
from orders.services import CheckoutError, LineRequest, place_order
from shop.api import ErrorSerializer, error_response, sentence
from shop.services import customer_for

MISSING_KEY = (
    "Send an Idempotency-Key header with a new value for each order, and the "
    "same value when retrying one."
)
NOT_FOUND = "There is no order with this id."

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description=(
        "1 to 80 characters, new for each checkout (a UUID, say). The same "
        "key again returns the order it placed, even if the lines differ, and "
        "charges nothing more: retry a timed-out request with the same key."
    ),
)


def _error(description: str, *examples: tuple[str, str]) -> OpenApiResponse:
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[
            OpenApiExample(code, value={"error": code, "detail": detail})
            for code, detail in examples
        ],
    )


UNAUTHENTICATED = _error(
    "No valid token or session.",
    ("not_authenticated", "Authentication credentials were not provided."),
    ("authentication_failed", "Invalid token."),
)


class OrderLineSerializer(serializers.ModelSerializer):
    product = serializers.CharField(source="product.code", help_text="Product code.")
    name = serializers.CharField(source="product.name")
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        help_text="What the units not cancelled cost; the order's total sums these.",
    )

    class Meta:
        model = OrderLine
        fields = [
            "product",
            "name",
            "quantity",
            "cancelled_quantity",
            "unit_price",
            "amount",
        ]
        extra_kwargs = {
            "quantity": {"help_text": "Units ordered."},
            "cancelled_quantity": {"help_text": "Units cancelled since."},
        }


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "total",
            "payment_reference",
            "created_at",
            "cancelled_at",
            "lines",
        ]
        extra_kwargs = {
            "total": {"help_text": "What the units not cancelled cost."},
            "cancelled_at": {"help_text": "When the latest cancellation was made."},
        }


class StepSerializer(serializers.Serializer):
    label = serializers.CharField()
    done = serializers.BooleanField()


class OrderDetailSerializer(OrderSerializer):
    background_work = serializers.SerializerMethodField(
        help_text="What the workers have done for the order so far."
    )

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "background_work"]

    @extend_schema_field(StepSerializer(many=True))
    def get_background_work(self, order: Order) -> list[dict[str, object]]:
        return StepSerializer(background_work(order), many=True).data


@extend_schema_field(OpenApiTypes.INT)
class QuantityField(serializers.Field):
    """Pass the quantity through as sent; place_order decides if it is valid.

    One rule in one place: a quantity that is not a whole number, below 1 or
    above the limit is refused by the service with ``invalid_order``, for the
    API and the checkout page alike.
    """

    def to_internal_value(self, data: object) -> object:
        return data

    def to_representation(self, value: object) -> object:
        return value


class CheckoutLineSerializer(serializers.Serializer):
    product = serializers.CharField(help_text="Product code.")
    quantity = QuantityField(help_text="Whole number from 1 to the per-order limit.")


class CheckoutSerializer(serializers.Serializer):
    lines = CheckoutLineSerializer(many=True)
    card_number = serializers.CharField(
        allow_blank=True,
        help_text=(
            f"The gateway is simulated: {CARD_APPROVED} is approved, "
            f"{CARD_DECLINED} declined, {CARD_INSUFFICIENT_FUNDS} has no funds."
        ),
    )


class OrderListCreateView(generics.ListAPIView):
    serializer_class = OrderSerializer
    queryset = Order.objects.all()
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[Order]:
        return (
            super()
            .get_queryset()
            .filter(customer__user=self.request.user)
            .prefetch_related("lines__product")
        )

    @extend_schema(
        summary="List my orders",
        responses={200: OrderSerializer(many=True), 401: UNAUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        summary="Place an order",
        description=(
            "Authorizes the card, reserves the stock and creates the order in "
            "one step: on any error nothing is charged, reserved or created. "
            "The confirmation email, stock ledger, analytics and search index "
            "follow in the background (see `background_work` on the order)."
        ),
        parameters=[IDEMPOTENCY_KEY],
        request=CheckoutSerializer,
        responses={
            201: OpenApiResponse(OrderSerializer, description="Order placed."),
            200: OpenApiResponse(
                OrderSerializer,
                description="This Idempotency-Key already placed this order.",
            ),
            400: _error(
                "The request cannot be an order.",
                ("malformed", "lines[0].product: This field is required."),
                ("missing_idempotency_key", MISSING_KEY),
                ("invalid_order", "Quantity of 85123A must be at least 1."),
                ("unknown_product", "Unknown products: 99999."),
                ("invalid_card", "The card number is mistyped (checksum fails)."),
            ),
            401: UNAUTHENTICATED,
            402: _error(
                "The card was declined.",
                ("payment_declined", "The card was declined (insufficient_funds)."),
            ),
            409: _error(
                "Not enough stock for a line.",
                ("out_of_stock", "Not enough stock: 85123A (3 left)."),
            ),
            415: _error(
                "The body is not JSON.",
                (
                    "unsupported_media_type",
                    'Unsupported media type "text/plain" in request.',
                ),
            ),
        },
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return error_response(
                "missing_idempotency_key", MISSING_KEY, status.HTTP_400_BAD_REQUEST
            )
        body = CheckoutSerializer(data=request.data)
        body.is_valid(raise_exception=True)

        lines = [
            LineRequest(line["product"], line["quantity"])
            for line in body.validated_data["lines"]
        ]
        try:
            result = place_order(
                customer=customer_for(request.user),
                lines=lines,
                card_number=body.validated_data["card_number"],
                idempotency_key=key,
            )
        except CheckoutError as error:
            return error_response(error.code, sentence(str(error)), error.status)

        location = reverse("api:order-detail", args=[result.order.pk], request=request)
        return Response(
            OrderSerializer(result.order).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
            headers={"Location": location},
        )


class OrderDetailView(generics.RetrieveAPIView):
    serializer_class = OrderDetailSerializer
    queryset = Order.objects.all()

    def get_object(self) -> Order:
        # Another customer's order is answered exactly like a missing one,
        # so ids cannot be probed.
        order = (
            self.get_queryset()
            .filter(customer__user=self.request.user, pk=self.kwargs["pk"])
            .prefetch_related("lines__product")
            .first()
        )
        if order is None:
            raise NotFound(NOT_FOUND)
        return order

    @extend_schema(
        summary="Show one of my orders",
        responses={
            200: OrderDetailSerializer,
            401: UNAUTHENTICATED,
            404: _error("No order of yours has this id.", ("not_found", NOT_FOUND)),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        return super().get(request, pk=pk)
