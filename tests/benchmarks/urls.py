"""The portal's URLs, and the raw list view the API's list is measured against."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from allocations.models import Allocation
from portal.urls import handler400, handler404, handler500
from portal.urls import urlpatterns as portal_urlpatterns

RAW_FIELDS = (
    "id", "application_id", "organization_id", "program_id", "pool_id", "start_date",
    "end_date", "granted_gpu_hours", "used_gpu_seconds", "energy_kwh", "status", "at_risk",
    "released_from", "model_lineage", "created_at",
)  # fmt: skip


def raw_allocations(request: HttpRequest) -> JsonResponse:
    """The floor: the newest 50 allocations of one organization with `.values()` and
    `JsonResponse`, no authentication, no serializer, no pagination."""
    rows = list(
        Allocation.objects.filter(organization_id=request.GET["organization"])
        .order_by("-created_at", "-id")
        .values(*RAW_FIELDS)[:50]
    )
    return JsonResponse({"results": rows})


urlpatterns = [
    path("bench/raw-allocations/", raw_allocations),
    *portal_urlpatterns,
]

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
