"""What the API's views share: validating an input, answering a creation, and the list
endpoints (a page of rows, filtered, each through the view's output serializer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.db.models import Model, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

Row = TypeVar("Row", bound=Model)
View = TypeVar("View", bound=type["PagedListView[Any]"])


def validated(
    serializer_class: type[serializers.Serializer], data: Any, **options: Any
) -> dict[str, Any]:
    """The input's validated data; a 400 with every field's errors if it is not valid.
    `options` go to the serializer (`instance`, `partial`, `context`)."""
    serializer = serializer_class(data=data, **options)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def created(serializer_class: type[serializers.BaseSerializer[Any]], instance: Any) -> Response:
    """The answer to a creation: 201 with the new row through its output serializer."""
    return Response(serializer_class(instance).data, status=status.HTTP_201_CREATED)


def post_documented(
    tag: str, summary: str, *, request: Any, responses: Any, description: str | None = None
) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: the documentation of a view's POST, for a view whose POST is its
    base's (one base for several actions)."""
    return extend_schema_view(
        post=extend_schema(
            tags=[tag],
            summary=summary,
            description=description,
            request=request,
            responses=responses,
        )
    )


def paged_list(tag: str, summary: str, description: str | None = None) -> Callable[[View], View]:
    """Class decorator: the documentation of a list view's GET, a page of its serializer's
    rows, under `tag` with `summary`."""

    def document(view: View) -> View:
        serializer = cast(Any, view).serializer_class
        rows = extend_schema(
            tags=[tag], summary=summary, description=description, responses=serializer(many=True)
        )
        documented: View = extend_schema_view(get=rows)(view)
        return documented

    return document


class PagedListView(generics.GenericAPIView[Row]):
    """GET: a page of `rows()` (filtered by the view's `filterset_fields`, if any), each
    through `serializer_class`, a model serializer. A subclass documents its GET with
    `paged_list` and answers `rows()`, the rows its user may see."""

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
