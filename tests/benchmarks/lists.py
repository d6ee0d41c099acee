"""Lists that cost the same at any size: the API's lists with 1,000 and with 1,000,000
allocations (and as many decided applications), and a raw list view in the same server.

    make bench ONLY=lists

Each request is a whole request through Django's handler in this process (middleware,
authentication with a bearer token, throttles, filters, pagination, serializer, JSON): the
p50 of R requests after warm-up, so a figure in requests per second is what one server
process does sequentially. The floor of `GET allocations/` is a raw view returning the same
50 rows with `.values()` and `JsonResponse` (tests/benchmarks/urls.py). The data are made in
SQL (tests/benchmarks/data.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

from tests.benchmarks.framework import Bench, Row, benchmark

SMALL = 1_000
LARGE = 1_000_000
PAGE = 50
# Where a deep page starts, as a fraction of the list.
DEPTH = 0.9


@benchmark("lists", order=20)
def lists(bench: Bench) -> Iterator[Row]:
    from django.test import Client
    from django.test.utils import override_settings
    from django.urls import clear_url_caches
    from django.utils import timezone

    from accounts.services import token_create
    from allocations.models import Allocation, AllocationStatus, Application, ApplicationStatus
    from portal.pagination import cursor_for
    from tests.benchmarks.data import grow_allocations
    from tests.factories import (
        CapacityEventFactory,
        MembershipFactory,
        OrganizationFactory,
        PoolFactory,
        ProgramFactory,
        UserFactory,
    )

    large = 20_000 if bench.quick else LARGE
    requests = 20 if bench.quick else max(bench.runs * 20, 100)
    # The report reads the decisions of its window (the last 90 days by default), which holds
    # about as many at 1,000 as at 1,000,000 (one decision every two hours).
    reports = requests
    pool = PoolFactory()
    CapacityEventFactory(pool=pool, effective_from=date(2020, 1, 1), gpus_in_service=100_000)
    program = ProgramFactory()
    organization = OrganizationFactory()
    user = UserFactory()
    MembershipFactory(user=user, organization=organization)
    now = timezone.now()
    today = timezone.localdate()
    application = Application.objects.create(
        organization=organization, program=program, pool=pool, applicant=user,
        title="Benchmark template", gpu_hours=1000, start_date=today,
        end_date=today + timedelta(days=29), status=ApplicationStatus.APPROVED, submission=1,
        submitted_at=now - timedelta(hours=30), decided_at=now,
        reasons=[{"code": "auto_approved", "message": "Benchmark data."}],
    )  # fmt: skip
    allocation = Allocation.objects.create(
        application=application, organization=organization, program=program, pool=pool,
        start_date=today, end_date=today + timedelta(days=29), granted_gpu_hours=1000,
        status=AllocationStatus.ACTIVE,
    )  # fmt: skip
    secret = token_create(user=user, name="benchmark").secret
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def get(url: str) -> Callable[[], Any]:
        def request() -> Any:
            response = client.get(url)
            assert response.status_code == 200, (url, response.content[:300])
            return response

        return request

    def p50(url: str, runs: int = requests) -> float:
        return bench.median(bench.timed(get(url), runs=runs, warmup=min(5, runs)))

    def deep(path: str, model: Any, total: int) -> str:
        """The URL of a page of 50 that starts at DEPTH of the list (newest first)."""
        first = get(f"{path}?page_size={PAGE}")().json()
        if "count" in first:  # page numbers
            return f"{path}?page_size={PAGE}&page={int(total * DEPTH) // PAGE + 1}"
        # The cursor a client would hold after reading that far.
        position = model.objects.order_by("-created_at", "-id").values_list(
            "created_at", flat=True
        )[int(total * DEPTH)]
        return f"{path}?page_size={PAGE}&cursor={cursor_for(position=position)}"

    figures: dict[tuple[str, int], float] = {}
    raw = f"/bench/raw-allocations/?organization={organization.pk}"
    lists_measured = {
        "allocations": ("/api/v1/allocations/", Allocation),
        "applications": ("/api/v1/applications/", Application),
    }
    with override_settings(ROOT_URLCONF="tests.benchmarks.urls"):
        clear_url_caches()
        try:
            existing = 1
            for size in (SMALL, large):
                grow_allocations(
                    application=application, allocation=allocation,
                    start=existing - 1, count=size - existing,
                )  # fmt: skip
                existing = size
                figures[("raw", size)] = p50(raw)
                for name, (path, model) in lists_measured.items():
                    figures[(f"{name} first", size)] = p50(f"{path}?page_size={PAGE}")
                    figures[(f"{name} deep", size)] = p50(deep(path, model, size))
                figures[("turnaround", size)] = p50("/api/v1/reports/turnaround/", reports)
        finally:
            clear_url_caches()

    api, floor = figures[("allocations first", SMALL)], figures[("raw", SMALL)]
    yield Row(
        what=f"GET allocations/?page_size={PAGE}, {SMALL:,} allocations",
        figure=1 / api, unit="req/s", floor=1 / floor,
        floor_what="raw .values() + JsonResponse view", ratio=floor / api, target=">= 0.5",
        runs=requests,
    )  # fmt: skip
    api, floor = figures[("allocations first", large)], figures[("raw", large)]
    yield Row(
        what=f"GET allocations/?page_size={PAGE}, {large:,} allocations",
        figure=1 / api, unit="req/s", floor=1 / floor,
        floor_what="raw .values() + JsonResponse view", ratio=floor / api, target=">= 0.5",
        runs=requests,
    )  # fmt: skip
    for name in lists_measured:
        for where in ("first", "deep"):
            small, big = figures[(f"{name} {where}", SMALL)], figures[(f"{name} {where}", large)]
            page = "first page" if where == "first" else f"a page at {DEPTH:.0%}"
            yield Row(
                what=f"GET {name}/ {page} of {PAGE}, p50 at {large:,}",
                figure=big * 1000, unit="ms", floor=small * 1000,
                floor_what=f"p50 at {SMALL:,}", ratio=big / small, target="<= 1.5",
                runs=requests,
            )  # fmt: skip
    small, big = figures[("turnaround", SMALL)], figures[("turnaround", large)]
    yield Row(
        what=f"GET reports/turnaround/ (last 90 days), p50 at {large:,} decided applications",
        figure=big * 1000, unit="ms", floor=small * 1000, floor_what=f"p50 at {SMALL:,}",
        ratio=big / small, target="<= 1.5", runs=reports,
        note="one decision every two hours: the window holds as many at both sizes",
    )  # fmt: skip
