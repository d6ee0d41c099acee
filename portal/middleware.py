"""Django's CommonMiddleware, without its redirect for writes to the API."""

from __future__ import annotations

from django.http import HttpRequest
from django.middleware.common import CommonMiddleware


class PortalCommonMiddleware(CommonMiddleware):
    """A POST, PUT, PATCH or DELETE to an API path without its trailing slash answers the
    API's JSON 404 (naming the right path), not a 301: a client that follows the redirect
    would resend the write as a GET, and Django in DEBUG raises instead."""

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path_info.startswith("/api/") and request.method not in ("GET", "HEAD"):
            return False
        return super().should_redirect_with_slash(request)
