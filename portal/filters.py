"""The filter backend of every list: django-filter's, with the FilterSet it makes from a
view's `filterset_fields` made once per view and model, not once per request (making the
class walks the model's fields: a few milliseconds of every list request)."""

from __future__ import annotations

from typing import Any

from django_filters.rest_framework import DjangoFilterBackend, FilterSet


class PortalFilterSet(FilterSet):
    """A FilterSet whose form class is made once per FilterSet class (django-filter makes it
    for every instance, from the filters' form fields)."""

    def get_form_class(self) -> Any:
        made = type(self).__dict__.get("_portal_form_class")
        if made is None:
            made = super().get_form_class()
            type.__setattr__(type(self), "_portal_form_class", made)
        return made


class PortalFilterBackend(DjangoFilterBackend):
    filterset_base = PortalFilterSet
    _classes: dict[tuple[type, type], Any] = {}

    def get_filterset_class(self, view: Any, queryset: Any = None) -> Any:
        if getattr(view, "filterset_class", None) or queryset is None:
            return super().get_filterset_class(view, queryset)
        key = (type(view), queryset.model)
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().get_filterset_class(view, queryset)
        return made

    def filter_queryset(self, request: Any, queryset: Any, view: Any) -> Any:
        if (
            not getattr(view, "filterset_class", None)
            and getattr(view, "filterset_fields", None)
            and not _asks_any(request.query_params, self.get_filterset_class(view, queryset))
        ):
            # Every filter of a class made from `filterset_fields` lets the rows through on
            # an empty value; none is required.
            return queryset
        return super().filter_queryset(request, queryset, view)


def _asks_any(params: Any, filterset_class: Any) -> bool:
    """Whether the query names any filter, or any of its parts (`<name>_min`, `<name>_after`:
    a range's widgets add a suffix)."""
    names = filterset_class.base_filters.keys()
    return any(key in names or any(key.startswith(f"{name}_") for name in names) for key in params)
