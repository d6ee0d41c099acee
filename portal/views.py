"""Health probes and the API root; no business logic."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from portal.apidocs import tags
from portal.celery import app as celery_app


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=3)
    return "ok"


def _check_cache() -> str:
    # A write and a read: the rate limits need both.
    cache.set("portal:readyz", "ok", timeout=10)
    if cache.get("portal:readyz") != "ok":
        raise RuntimeError("the cache did not keep a value")
    return "ok"


# Without the database nothing can be served; without the broker or the cache the portal
# serves degraded (decisions and other side effects wait, rate limits let requests through).
_ESSENTIAL = frozenset({"database"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve, and what is away.

    200 `ok`: the database, the Celery broker and the cache answer. 200 `degraded`: the
    database answers and the broker or the cache does not; the portal still serves reads and
    writes, and a load balancer should keep sending it requests. 503 `unavailable`: the
    database is away. `unavailable` lists what is away, `checks` says why.
    """
    checks: dict[str, str] = {}
    for name, check in (
        ("database", _check_database),
        ("broker", _check_broker),
        ("cache", _check_cache),
    ):
        try:
            checks[name] = check()
        except Exception as error:
            checks[name] = f"error: {type(error).__name__}"
    away = [name for name, value in checks.items() if value != "ok"]
    if not away:
        state = "ok"
    elif _ESSENTIAL.isdisjoint(away):
        state = "degraded"
    else:
        state = "unavailable"
    return JsonResponse(
        {"status": state, "checks": checks, "unavailable": away},
        status=503 if state == "unavailable" else 200,
    )


class ApiRootView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        tags=[tags.SIGN_IN],
        summary="Links to the API's collections and its documentation",
        responses=inline_serializer(
            "ApiRoot", fields={"links": serializers.DictField(child=serializers.URLField())}
        ),
    )
    def get(self, request: Request) -> Response:
        names = [
            "me",
            "token-list",
            "organization-list",
            "site-list",
            "accelerator-list",
            "pool-list",
            "program-list",
            "application-list",
            "allocation-list",
            "capacity",
        ]
        links: dict[str, Any] = {name: reverse(name, request=request) for name in names}
        links["docs"] = reverse("swagger-ui", request=request)
        links["schema"] = reverse("schema", request=request)
        return Response({"links": links})
