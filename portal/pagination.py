from typing import Any

from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.pagination import PageNumberPagination


class PortalPagination(PageNumberPagination):
    """Page-numbered lists: `?page=2&page_size=100`. A page size past 500 is taken as 500;
    one that is not a positive whole number is refused (400), never silently replaced. A page
    past the last answers 404 `not_found` ("Invalid page.")."""

    page_size_query_param = "page_size"
    max_page_size = 500
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
            raise ValidationError(
                {self.page_size_query_param: [ErrorDetail(message, code="invalid")]}
            )
        # Compared by length first: a string of thousands of digits never reaches int().
        if len(digits) > len(str(self.max_page_size)):
            return self.max_page_size
        return min(int(digits), self.max_page_size)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters
