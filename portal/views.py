"""Health probes and the API root; no business logic."""

from __future__ import annotations

from typing import Any

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


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database answers and the Celery broker accepts connections."""
    checks: dict[str, str] = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            checks[name] = check()
        except Exception as error:
            checks[name] = f"error: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


class ApiRootView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
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
