"""The language a request is answered in.

`LocaleMiddleware` picks it from the language cookie, else `Accept-Language`. A signed-in
person who chose a language in their settings gets that one whatever their browser says:
`UserLanguageMiddleware` for the session (pages, admin), the bearer-token authentication for
client tools. Emails use `user_language(user)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation


def user_language(user: Any) -> str:
    """The language to write to `user` in: their setting, else the site's default."""
    chosen = getattr(user, "language", "") or ""
    return chosen if chosen in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def activate_user_language(request: Any, user: Any) -> None:
    """Answer this request in the user's chosen language, when they chose one."""
    chosen = getattr(user, "language", "") or ""
    if chosen in dict(settings.LANGUAGES):
        translation.activate(chosen)
        request.LANGUAGE_CODE = chosen


class UserLanguageMiddleware:
    """After authentication: a signed-in user's own language setting wins."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            activate_user_language(request, user)
        return self.get_response(request)


# "no" (Norwegian) and "nn" (Nynorsk), as many browsers and systems send them.
_NORWEGIAN = re.compile(r"(?<![\w-])(?:no|nn)(?=-|;|,|\s|$)", re.IGNORECASE)


class NorwegianAcceptLanguageMiddleware:
    """Before LocaleMiddleware: a browser asking for Norwegian as `no` or `nn` (Nynorsk)
    gets the bokmål pages, the closest the portal has, rather than English."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        header = request.META.get("HTTP_ACCEPT_LANGUAGE")
        if header:
            request.META["HTTP_ACCEPT_LANGUAGE"] = _NORWEGIAN.sub("nb", header)
        return self.get_response(request)
