"""The API's JSON renderer: DRF's, with the values a page holds most of asked for first."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder


class PortalJSONEncoder(JSONEncoder):
    """DRF's encoder, which asks a value's type of six others before it reaches a UUID: the
    ids of a list's rows and of their related rows (four or five a row) are answered first,
    as DRF answers them."""

    def default(self, obj: Any) -> Any:
        if type(obj) is uuid.UUID:
            return str(obj)
        return super().default(obj)


class PortalJSONRenderer(JSONRenderer):
    encoder_class = PortalJSONEncoder
