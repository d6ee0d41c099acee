from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def oidc(request: HttpRequest) -> dict[str, object]:
    """Whether the sign-in pages offer OpenID Connect, and under which name."""
    return {
        "oidc_enabled": settings.PORTAL_OIDC_ENABLED,
        "oidc_provider": getattr(settings, "PORTAL_OIDC_PROVIDER_NAME", ""),
    }
