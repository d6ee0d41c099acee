"""The API's JSON parser: a body too large answers 413, one nested too deeply a 400; both
with the portal's error codes, never a 500."""

from __future__ import annotations

import codecs
from typing import Any

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

# No request body of the API nests deeper than a few levels (a batch of records, a list of
# countries); anything far deeper is refused before a serializer walks it.
MAX_DEPTH = 32
TOO_DEEP = "JSON parse error - the body nests too deeply."


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


# What json.loads makes of an object or an array: exactly these types, never a subclass.
_CONTAINERS = frozenset((dict, list))
_is_container = _CONTAINERS.__contains__


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels deep. Walks the body a level at a
    time and descends only into the containers that hold containers: whether one does is
    asked of all its values at once (`map` in C), so a batch of 10,000 flat records costs
    10,000 such questions, not a Python step for each of their 70,000 values."""
    level = [data] if type(data) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        deeper = []
        for value in level:
            children = value.values() if type(value) is dict else value
            if any(map(_is_container, map(type, children))):
                deeper.extend([child for child in children if type(child) in _CONTAINERS])
        level = deeper
    return False


class PortalJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = parser_context.get("request")
        if limit is not None and request is not None:
            meta = request.META
            try:
                length = int(meta.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            raw = stream.read() if limit is None else stream.read(limit + 1)
            if limit is not None and len(raw) > limit:
                raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
            text = codecs.decode(raw, encoding)
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except RecursionError as error:
            raise exceptions.ParseError(TOO_DEEP) from error
        except ValueError as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from error
        if _deeper_than(data, MAX_DEPTH):
            raise exceptions.ParseError(TOO_DEEP)
        return data
