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
