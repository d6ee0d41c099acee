"""The base of the API's list endpoints: a page of rows, filtered, each through the view's
output serializer."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response

Row = TypeVar("Row", bound=Model)


class PagedListView(generics.GenericAPIView[Row]):
    """GET: a page of `rows()` (filtered by the view's `filterset_fields`, if any), each
    through `serializer_class`, a model serializer. A subclass documents its GET with
    `extend_schema_view` and answers `rows()`, the rows its user may see."""

    def rows(self) -> QuerySet[Row]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[Row]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator: no user, no ids
            serializer: Any = self.get_serializer_class()
            return serializer.Meta.model._default_manager.none()
        return self.rows()

    def get(self, request: Request, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        serializer: Any = self.get_serializer_class()
        return self.get_paginated_response(serializer(page, many=True).data)
