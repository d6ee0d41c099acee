"""What the apps' selectors share."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet
from django.http import Http404

Row = TypeVar("Row", bound=Model)


def first_or_404(rows: QuerySet[Row]) -> Row:
    """The first of the rows a user may see, or a 404: what they may not see does not exist
    for them."""
    row = rows.first()
    if row is None:
        raise Http404
    return row
