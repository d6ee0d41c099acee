"""The API's JSON renderer: DRF's answer, written by orjson (in C) where it writes the same
bytes, by DRF's encoder otherwise."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
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


# orjson writes str, int, float, bool, None, dicts, lists, tuples, dates and UUIDs as DRF's
# encoder does; times and dataclasses go to the encoder (DRF writes `Z` for any zero offset,
# and refuses dataclasses), as does anything orjson does not know (decimals, lazy text).
_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_DEFAULT = PortalJSONEncoder().default


class PortalJSONRenderer(JSONRenderer):
    encoder_class = PortalJSONEncoder

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if data is None or self.ensure_ascii or not self.compact:
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            text = orjson.dumps(data, default=_DEFAULT, option=_OPTIONS)
        except orjson.JSONEncodeError:
            # what orjson refuses (an integer past 64 bits, a key of another type) DRF's
            # encoder writes, or refuses as it always has
            return super().render(data, accepted_media_type, renderer_context)
        # As DRF: the two line separators JavaScript does not allow in a string, escaped.
        if b"\xe2\x80\xa8" in text or b"\xe2\x80\xa9" in text:
            text = text.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return text
