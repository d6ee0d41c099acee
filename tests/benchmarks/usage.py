"""Usage ingest through the API, beside a raw COPY of the same rows, in the same run.

    make bench ONLY=usage   (or make bench-usage)

Posts batches of 10,000 records to POST /api/v1/usage/ in this process (the whole request:
authentication, JSON parsing, validation, the ingest transaction), then COPYs the same rows
into a fresh copy of the table, and gives records per second of each and their ratio.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

from tests.benchmarks.framework import Bench, Row, benchmark

BATCH = 10_000


@benchmark("usage", order=10)
def usage(bench: Bench) -> Iterator[Row]:
    from django.db import connection
    from django.utils import timezone
    from rest_framework.test import APIClient

    from accounts.models import Organization, User
    from accounts.services import scheduler_account_create, scheduler_token_issue
    from allocations.models import (
        AcceleratorModel,
        Allocation,
        Application,
        CapacityEvent,
        GpuPool,
        Program,
        Site,
    )

    batches_count = 2 if bench.quick else max(bench.runs, 5)
    today = timezone.localdate()
    operator = User.objects.create_user("operator@bench.example", None, is_staff=True)
    scheduler = scheduler_account_create(source="slurm-bench", actor=operator)
    site = Site.objects.create(name="bench", country="NO", pue=Decimal("1.10"))
    gb300 = AcceleratorModel.objects.create(
        name="GB300", board_power_w=1400, it_power_w=1900, peak_bf16_flops=2_500_000_000_000_000
    )
    pool = GpuPool.objects.create(name="bench-pool", site=site, accelerator=gb300)
    CapacityEvent.objects.create(pool=pool, effective_from=date(2020, 1, 1), gpus_in_service=10**5)
    program = Program.objects.create(
        name="bench", slug="bench", priority=1, max_gpu_hours=10**9, max_duration_days=3650,
        org_cap_gpu_hours=10**12, nominal_share=Decimal(0), lending_limit=Decimal(0),
        borrowing_limit=Decimal(1), turnaround_days=1,
    )  # fmt: skip
    organization = Organization.objects.create(name="bench", kind="startup", country="NO")
    application = Application.objects.create(
        organization=organization, program=program, pool=pool, applicant=operator,
        title="bench", gpu_hours=10**9, start_date=today, end_date=today + timedelta(days=30),
        status="approved",
    )  # fmt: skip
    allocation = Allocation.objects.create(
        application=application, organization=organization, program=program, pool=pool,
        start_date=today, end_date=today + timedelta(days=30), granted_gpu_hours=10**9,
        status="active",
    )  # fmt: skip
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION="Bearer "
        + scheduler_token_issue(account=scheduler, actor=operator, name="bench").secret
    )
    start = timezone.make_aware(datetime.combine(today, datetime.min.time())) + timedelta(hours=1)
    batches = [
        [
            {
                "source": "slurm-bench",
                "external_id": f"{number}-{index}",
                "allocation": str(allocation.pk),
                "gpu_seconds": 3600 * 8,
                "started_at": start.isoformat(),
                "ended_at": (start + timedelta(hours=1)).isoformat(),
                "energy_kwh": "12.5",
            }
            for index in range(BATCH)
        ]
        for number in range(batches_count)
    ]

    # The bodies as a scheduler sends them, encoded before the clock starts: what is measured
    # is the portal's work, not the test client's encoding.
    bodies = [json.dumps({"records": batch}) for batch in batches]
    api_rates = []
    for body in bodies:
        began = time.perf_counter()
        response = client.post("/api/v1/usage/", body, content_type="application/json")
        elapsed = time.perf_counter() - began
        assert response.status_code == 200, response.content[:500]
        assert response.json()["accepted"] == BATCH, response.json()
        api_rates.append(BATCH / elapsed)
    allocation.refresh_from_db()
    assert allocation.used_gpu_seconds == BATCH * batches_count * 3600 * 8

    copy_rates = []
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE usage_copy (LIKE allocations_usagerecord INCLUDING ALL)")
        for batch in batches:
            buffer = io.StringIO()
            for record in batch:
                buffer.write(
                    f"{uuid.uuid4()}\tslurm-copy\t{record['external_id']}\t{allocation.pk}\t"
                    f"{record['gpu_seconds']}\t{record['started_at']}\t{record['ended_at']}\t"
                    f"{record['energy_kwh']}\t{timezone.now().isoformat()}\n"
                )
            began = time.perf_counter()
            with cursor.cursor.copy(
                "COPY usage_copy (id, source, external_id, allocation_id, gpu_seconds, "
                "started_at, ended_at, energy_kwh, received_at) FROM STDIN"
            ) as copy:
                copy.write(buffer.getvalue())
            copy_rates.append(BATCH / (time.perf_counter() - began))

    api, raw = bench.median(api_rates), bench.median(copy_rates)
    yield Row(
        what=f"usage ingest, batches of {BATCH:,} (POST /api/v1/usage/, in process)",
        figure=api,
        unit="records/s",
        floor=raw,
        floor_what="raw COPY of the same rows",
        ratio=api / raw,
        target=">= 0.25",
        runs=batches_count,
    )
