"""What every endpoint of the JSON API shares, and product search.

Every error the API answers has the body ``{"error": code, "detail":
sentence}``: ``code`` is stable for programs to branch on, ``detail`` is
for the person reading it. ``exception_handler`` gives DRF's own errors
(authentication, parsing, validation, 404) that shape.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.text import capfirst
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from shop.models import SearchEntry
from shop.search import search_products


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Stable code, e.g. `out_of_stock`.")
    detail = serializers.CharField(help_text="What went wrong, for a person.")


def sentence(text: str) -> str:
    """Return text as a sentence: capital first letter, full stop at the end."""
    return f"{capfirst(text.strip().rstrip('.'))}."


def error_response(code: str, detail: str, status: int) -> Response:
    return Response({"error": code, "detail": detail}, status=status)


def exception_handler(exc: Exception, context: dict[str, object]) -> Response | None:
    """Answer DRF's exceptions in the API's error shape; None lets others raise."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    # DRF's handler sets the status and headers (WWW-Authenticate,
    # Retry-After) and rolls back; only the body is replaced.
    response = drf_exception_handler(exc, context)

    if isinstance(exc, exceptions.ValidationError):
        code, detail = "malformed", _first_error(exc.detail)
    elif isinstance(exc, exceptions.ParseError):
        code, detail = "malformed", sentence(str(exc.detail))
    else:
        code, detail = exc.default_code, sentence(str(exc.detail))
    response.data = {"error": code, "detail": detail}
    return response


def _first_error(detail: object, path: str = "") -> str:
    """Return the first message of a validation error, led by its field path.

    A missing product on the second line reads
    ``lines[1].product: This field is required.``
    """
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):
                inner = f"{path}[{key}]"
            elif key == "non_field_errors":
                inner = path
            else:
                inner = f"{path}.{key}".lstrip(".")
            if value:
                return _first_error(value, inner)
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                if value:
                    return _first_error(value, f"{path}[{index}]")
            else:
                return _first_error(value, path)
    message = sentence(str(detail))
    return f"{path}: {message}" if path else message


class SearchEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = SearchEntry
        fields = ["code", "name", "price", "in_stock", "indexed_at"]


class ProductSearchView(generics.ListAPIView):
    """Search the product index; results may lag the catalog by seconds."""

    serializer_class = SearchEntrySerializer
    permission_classes = [AllowAny]
    pagination_class = None
    queryset = SearchEntry.objects.none()

    def get_queryset(self) -> list[SearchEntry]:  # type: ignore[override]
        query = self.request.query_params.get("q", "")
        return search_products(query, limit=settings.SHOP_SEARCH_RESULTS)

    @extend_schema(
        summary="Search products",
        description=(
            "Entries of the search index matching every word of `q` as a "
            "prefix, best first. Name, price and availability are those "
            "indexed, which trail a change to the catalog until the search "
            "worker has run. An empty query returns no entries."
        ),
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="Words to find.")
        ],
        responses={200: SearchEntrySerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return super().get(request)
