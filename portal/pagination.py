from typing import Any

from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination


class StrictPageSize:
    """`page_size` from 1 to 500 (default 50); more is taken as 500; one that is not a positive
    whole number is refused (400), never silently replaced."""

    page_size: int | None
    page_size_query_param: str | None = "page_size"
    max_page_size: int | None = 500
    page_size_query_description = (
        "Results per page, from 1 to 500 (default 50); more is taken as 500, anything that is "
        "not a positive whole number is refused with 400."
    )

    def get_page_size(self, request: Any) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        digits = raw.lstrip("0")
        if not (raw.isascii() and raw.isdigit()) or not digits:
            message = f"Give a whole number from 1 to {self.max_page_size}."
            raise ValidationError({"page_size": [ErrorDetail(message, code="invalid")]})
        # Compared by length first: a string of thousands of digits never reaches int().
        most = self.max_page_size or 500
        if len(digits) > len(str(most)):
            return most
        return min(int(digits), most)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)  # type: ignore[misc]
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


class PortalPagination(StrictPageSize, PageNumberPagination):
    """Page-numbered lists, for the small ones (inventory, programs, tokens, members):
    `?page=2&page_size=100`. A page past the last answers 404 `not_found` ("Invalid
    page.")."""

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters


class KeysetPagination(StrictPageSize, CursorPagination):
    """Lists that grow without bound (allocations, applications, audit trails): pages follow
    a cursor, `?cursor=…&page_size=100`, each found by the index of its ordering (newest
    first) from where the last page ended: the first page and the ten-thousandth cost the
    same, and no page counts the list. The answer is `{next, previous, results}`: follow
    `next` (null on the last page). A cursor that is not one the API gave answers 404
    `not_found`. The page size is read as `PortalPagination` reads it."""

    ordering: Any = ("-created_at", "-id")
    cursor_query_description = (
        "Where the page starts: the `cursor` of the `next` (or `previous`) link of the page "
        "before. Leave it out for the first page."
    )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = super().get_paginated_response_schema(schema)
        answer["required"] = ["next", "previous", "results"]
        answer["properties"]["next"]["description"] = (
            "The next page, null on the last one: lists are read by following it."
        )
        # DRF's own examples end the next link in a stray quote, which is not a URI.
        answer["properties"]["next"]["example"] = (
            "https://portal.example/api/v1/allocations/?cursor=cD0yMDI2LTExLTMw"
        )
        answer["properties"]["previous"]["example"] = (
            "https://portal.example/api/v1/allocations/?cursor=cj0xJnA9MjAyNi0xMi0wMQ%3D%3D"
        )
        return answer


class OldestFirstKeysetPagination(KeysetPagination):
    """A trail read in the order it happened (an application's audit events)."""

    ordering = ("created_at", "id")


def cursor_for(*, position: Any, ordering: tuple[str, ...] = KeysetPagination.ordering) -> str:
    """The cursor of the page that starts after a row whose first ordering field is
    `position`, as the pagination writes it (for clients that start deep, and benchmarks)."""
    from base64 import b64encode
    from urllib.parse import urlencode

    del ordering  # the position is the first ordering field's, whatever its direction
    return b64encode(urlencode({"p": str(position)}).encode("ascii")).decode("ascii")
