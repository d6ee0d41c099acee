"""Usage: ingest the scheduler's records exactly once, enforce the grant, tell the backend.

Ingest validates each record, then in one transaction locks the batch's allocations (in id
order), inserts the records that are new (a record already stored under its source and
external id is a duplicate, even if posted at the same moment by another batch: the unique
constraint makes the second insert wait and do nothing) and adds exactly their GPU-seconds
to each allocation. Thresholds of 75, 90 and 100 % notify once each; at 100 % the
allocation is exhausted and the scheduler is told to stop it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from allocations import effects
from allocations.backends import account_name
from allocations.lifecycle import ALLOCATION
from allocations.models import Allocation, AllocationStatus, BackendCall, UsageRecord
from allocations.selectors import energy_kwh_per_gpu_hour
from allocations.services.scheduler import backend_request
from audit.services import audit_record

THRESHOLDS = (75, 90, 100)
ACCEPTING = (AllocationStatus.ACTIVE, AllocationStatus.EXHAUSTED, AllocationStatus.SUSPENDED)
# No job uses more GPUs than this at once; more GPU-seconds than that per second is absurd.
MAX_GPUS_PER_JOB = 100_000
KWH = Decimal("0.001")


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


# What a record says of its job: a re-post that says the same is a duplicate, one that says
# something else is a conflict.
CONTENT = ("allocation_id", "gpu_seconds", "started_at", "ended_at", "energy_kwh")


def _reject(result: IngestResult, index: int, code: str, message: str) -> None:
    result.rejected.append({"index": index, "code": code, "message": message})


def _content(row: UsageRecord) -> tuple[Any, ...]:
    values = [getattr(row, name) for name in CONTENT]
    energy = values[-1]
    values[-1] = None if energy is None else Decimal(energy).quantize(KWH)
    return tuple(values)


def _conflict(result: IngestResult, index: int, source: str, external_id: str) -> None:
    _reject(
        result,
        index,
        "conflicting_record",
        f"Job {source}/{external_id} was reported before with other content "
        "(allocation, GPU-seconds, times or energy); the first report stands.",
    )


def usage_ingest(*, records: Sequence[dict[str, Any]], source: str) -> IngestResult:
    """Ingest a batch of well-formed records (`usage_batch_validate` checked their shape) from
    the scheduler of one `source` (its service account's, or the backend's for the beat's
    pull).

    Each record is accepted, a duplicate (its job is stored already with the same content),
    or rejected with its index and a code: `wrong_source` (not the poster's source),
    `unknown_allocation`, `invalid_gpu_seconds`, `absurd_gpu_seconds`,
    `ended_before_started`, `outside_window`, `allocation_not_active`, or
    `conflicting_record` (its job is stored already with other content: nothing changes).
    The scheduler runs every organization's jobs, so any allocation may be reported.

    Locks: the batch's allocations, in id order. A job posted by two batches at once is
    inserted by one; the other's insert waits on the unique (source, external id) index
    and then compares with what was committed. On PostgreSQL the records go through a
    staging table loaded with COPY, one `INSERT … ON CONFLICT DO NOTHING RETURNING` and one
    set-wise UPDATE of the allocations; elsewhere (the embedded SQLite) through the ORM, with
    the same answers. Side effects after commit.
    """
    result = IngestResult()
    candidates = _candidates(result, records, source)
    if candidates:
        store = _store_copy if connection.vendor == "postgresql" else _store_orm
        with transaction.atomic():
            locked = {
                allocation.pk: allocation
                for allocation in Allocation.objects.select_for_update(of=("self",))
                .select_related("pool__site", "pool__accelerator")
                .filter(pk__in={candidate.allocation_id for candidate in candidates})
                .order_by("pk")
            }
            added = store(result, candidates, source, locked)
            for allocation_id, used_gpu_seconds in added.items():
                allocation = locked[allocation_id]
                allocation.used_gpu_seconds = used_gpu_seconds
                _enforce(allocation)
    result.rejected.sort(key=lambda rejection: rejection["index"])
    return result


def _candidates(
    result: IngestResult, records: Sequence[dict[str, Any]], source: str
) -> list[Candidate]:
    """The records that pass every check the batch can make by itself, the first of each job
    in the batch; the others are rejected in `result`, or counted as duplicates of an earlier
    record of the batch. Runs 10,000 times a batch: it looks each allocation up once."""
    grace = timedelta(hours=settings.PORTAL_USAGE_GRACE_HOURS)
    allocations = Allocation.objects.in_bulk({record["allocation"] for record in records} - {None})
    windows = {pk: _window(allocation, grace) for pk, allocation in allocations.items()}
    candidates: list[Candidate] = []
    first_in_batch: dict[str, Candidate] = {}
    energies: dict[Any, Decimal] = {}
    for index, record in enumerate(records):
        allocation_id = record["allocation"]
        window = windows.get(allocation_id)
        seconds, started, ended = record["gpu_seconds"], record["started_at"], record["ended_at"]
        # A record that passes every check, told inline; `_refusal` says which one another
        # fails (or passes it: a job of more GPU-seconds than the bound, long enough).
        if not (
            window is not None
            and window[2]
            and record["source"] == source
            and 0 < seconds <= MAX_GPUS_PER_JOB
            and window[0] <= started <= ended <= window[1]
        ):
            refusal = _refusal(record, source, window, allocations, grace)
            if refusal is not None:
                _reject(result, index, *refusal)
                continue
        energy = record.get("energy_kwh")
        if energy is not None:
            # Most records of a batch report one of a few energies: each quantized once
            # (values that compare equal are equal exactly, and quantize alike).
            kwh = energies.get(energy)
            if kwh is None:
                kwh = energies[energy] = Decimal(energy).quantize(KWH)
            energy = kwh
        external_id = record["external_id"]
        candidate = Candidate(index, external_id, allocation_id, seconds, started, ended, energy)
        earlier = first_in_batch.setdefault(external_id, candidate)
        if earlier is candidate:
            candidates.append(candidate)
        elif earlier.content == candidate.content:
            result.duplicates += 1
        else:
            _conflict(result, index, source, external_id)
    return candidates


def _refusal(
    record: dict[str, Any],
    source: str,
    window: tuple[datetime, datetime, bool] | None,
    allocations: dict[Any, Allocation],
    grace: timedelta,
) -> tuple[str, str] | None:
    """Why a record is rejected on its own (its code and message), or None."""
    started, ended, seconds = record["started_at"], record["ended_at"], record["gpu_seconds"]
    if record["source"] != source:
        return (
            "wrong_source",
            f"This scheduler reports for `{source}`, not `{record['source']}`.",
        )
    if window is None:
        return "unknown_allocation", "No such allocation."
    if seconds <= 0:
        return "invalid_gpu_seconds", "GPU-seconds are positive."
    if ended < started:
        return "ended_before_started", "The job ends before it starts."
    if (
        seconds > MAX_GPUS_PER_JOB
        and seconds > max((ended - started).total_seconds(), 1) * MAX_GPUS_PER_JOB
    ):
        return (
            "absurd_gpu_seconds",
            f"More than {MAX_GPUS_PER_JOB} GPUs for the job's whole duration.",
        )
    if not (window[0] <= started and ended <= window[1]):
        allocation = allocations[record["allocation"]]
        return (
            "outside_window",
            f"The job ran outside the allocation's window "
            f"{allocation.start_date}..{allocation.end_date} (grace {grace}).",
        )
    if not window[2]:
        return (
            "allocation_not_active",
            f"The allocation is {allocations[record['allocation']].status}.",
        )
    return None


@dataclass(slots=True)
class Candidate:
    """A record that passed every check but the store's: new, a duplicate or a conflict."""

    index: int
    external_id: str
    allocation_id: Any
    gpu_seconds: int
    started_at: datetime
    ended_at: datetime
    energy_kwh: Decimal | None

    @property
    def content(self) -> tuple[Any, ...]:
        return (
            self.allocation_id,
            self.gpu_seconds,
            self.started_at,
            self.ended_at,
            self.energy_kwh,
        )

    def counted_kwh(self, allocation: Allocation) -> Decimal:
        """The energy counted: as reported, else GPU-seconds at the pool's facility power."""
        if self.energy_kwh is not None:
            return self.energy_kwh
        kwh_per_gpu_hour = energy_kwh_per_gpu_hour(
            accelerator=allocation.pool.accelerator, pue=allocation.pool.site.pue
        )
        return (Decimal(self.gpu_seconds) / 3600 * kwh_per_gpu_hour).quantize(KWH)


def _store_orm(
    result: IngestResult, candidates: list[Candidate], source: str, locked: dict[Any, Allocation]
) -> dict[Any, int]:
    """Insert the new records through the ORM and add them to their allocations; answers each
    changed allocation's used GPU-seconds. The allocations are locked by the caller."""
    rows = {
        candidate.index: UsageRecord(
            id=uuid.uuid4(),
            source=source,
            external_id=candidate.external_id,
            allocation_id=candidate.allocation_id,
            gpu_seconds=candidate.gpu_seconds,
            started_at=candidate.started_at,
            ended_at=candidate.ended_at,
            energy_kwh=candidate.energy_kwh,
        )
        for candidate in candidates
    }
    UsageRecord.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
    inserted = set(
        UsageRecord.objects.filter(pk__in=[row.pk for row in rows.values()]).values_list(
            "pk", flat=True
        )
    )
    known = [row.external_id for row in rows.values() if row.pk not in inserted]
    stored = {
        row.external_id: row
        for row in UsageRecord.objects.filter(source=source, external_id__in=known)
    }
    added: dict[Any, int] = defaultdict(int)
    energy: dict[Any, Decimal] = defaultdict(Decimal)
    for candidate in candidates:
        if rows[candidate.index].pk in inserted:
            added[candidate.allocation_id] += candidate.gpu_seconds
            energy[candidate.allocation_id] += candidate.counted_kwh(
                locked[candidate.allocation_id]
            )
        elif (first := stored.get(candidate.external_id)) and _content(first) == candidate.content:
            result.duplicates += 1
        else:
            _conflict(result, candidate.index, source, candidate.external_id)
    result.accepted = len(inserted)
    for allocation_id, seconds in added.items():
        Allocation.objects.filter(pk=allocation_id).update(
            used_gpu_seconds=F("used_gpu_seconds") + seconds,
            energy_kwh=F("energy_kwh") + energy[allocation_id],
        )
    return {pk: locked[pk].used_gpu_seconds + seconds for pk, seconds in added.items()}


# The staging table of one connection: created once, emptied at every commit.
STAGING_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS usage_staging (
    position integer NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    external_id text NOT NULL,
    allocation_id uuid NOT NULL,
    gpu_seconds bigint NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz NOT NULL,
    energy_kwh numeric(14, 3),
    counted_kwh numeric NOT NULL
) ON COMMIT DELETE ROWS
"""
# In COPY's binary format, each value written by psycopg's C dumpers: a time or a number as
# text costs Python (`isoformat` of an aware time is microseconds) and the server its parsing.
STAGING_COPY = (
    "COPY usage_staging (position, external_id, allocation_id, gpu_seconds, started_at, "
    "ended_at, energy_kwh, counted_kwh) FROM STDIN (FORMAT BINARY)"
)
STAGING_TYPES = ("int4", "text", "uuid", "int8", "timestamptz", "timestamptz", "numeric", "numeric")
# The new records inserted (in job order, so that two batches meet on the unique index in
# one order; the bytes' order, which every batch shares and sorts without the collation's
# rules), their sums added to their allocations: one statement. Only what the INSERT
# returns is counted: a record another batch committed first is not.
STAGING_INSERT = """
WITH inserted AS (
    INSERT INTO allocations_usagerecord AS record (
        id, source, external_id, allocation_id, gpu_seconds, started_at, ended_at,
        energy_kwh, received_at
    )
    SELECT staged.id, %(source)s, staged.external_id, staged.allocation_id, staged.gpu_seconds,
        staged.started_at, staged.ended_at, staged.energy_kwh, %(received_at)s
    FROM usage_staging staged
    ORDER BY staged.external_id COLLATE "C"
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING record.id
), added AS (
    SELECT staged.allocation_id, sum(staged.gpu_seconds) AS gpu_seconds,
        sum(staged.counted_kwh) AS energy_kwh, count(*) AS records
    FROM usage_staging staged
    WHERE staged.id IN (SELECT inserted.id FROM inserted)
    GROUP BY staged.allocation_id
)
UPDATE allocations_allocation allocation
SET used_gpu_seconds = allocation.used_gpu_seconds + added.gpu_seconds,
    energy_kwh = allocation.energy_kwh + added.energy_kwh
FROM added
WHERE allocation.id = added.allocation_id
RETURNING allocation.id, allocation.used_gpu_seconds, added.records
"""
# The staged records that were not inserted: each the same as the stored one (a duplicate),
# or not (a conflict).
STAGING_KNOWN = """
SELECT staged.position,
    stored.allocation_id = staged.allocation_id
    AND stored.gpu_seconds = staged.gpu_seconds
    AND stored.started_at = staged.started_at
    AND stored.ended_at = staged.ended_at
    AND stored.energy_kwh IS NOT DISTINCT FROM staged.energy_kwh
FROM usage_staging staged
JOIN allocations_usagerecord stored
    ON stored.source = %s AND stored.external_id = staged.external_id
WHERE stored.id <> staged.id
"""


def _store_copy(
    result: IngestResult, candidates: list[Candidate], source: str, locked: dict[Any, Allocation]
) -> dict[Any, int]:
    """`_store_orm` on PostgreSQL, set-wise: COPY into the staging table, one INSERT … ON
    CONFLICT DO NOTHING RETURNING with the allocations' UPDATE, and only when some record was
    not new, one query that tells duplicates from conflicts."""
    with connection.cursor() as cursor:
        cursor.execute(STAGING_TABLE)
        # Emptied at commit, but an ingest inside a caller's transaction (a test's, a retried
        # request's) would otherwise find the rows of an earlier one there. A DELETE, not a
        # TRUNCATE: the table is empty nearly always, and a TRUNCATE makes a new file anyway.
        cursor.execute("DELETE FROM usage_staging")
        with cursor.cursor.copy(STAGING_COPY) as copy:
            copy.set_types(STAGING_TYPES)
            write = copy.write_row
            for candidate in candidates:
                energy = candidate.energy_kwh
                write(
                    (
                        candidate.index,
                        candidate.external_id,
                        candidate.allocation_id,
                        candidate.gpu_seconds,
                        candidate.started_at,
                        candidate.ended_at,
                        energy,
                        energy
                        if energy is not None
                        else candidate.counted_kwh(locked[candidate.allocation_id]),
                    )
                )
        cursor.execute(STAGING_INSERT, {"source": source, "received_at": timezone.now()})
        added = {pk: (used, records) for pk, used, records in cursor.fetchall()}
        result.accepted = sum(records for _, records in added.values())
        if result.accepted < len(candidates):
            # Known to the planner as the few rows they are: each looked up by the index.
            cursor.execute("ANALYZE usage_staging")
            cursor.execute(STAGING_KNOWN, [source])
            by_index = {candidate.index: candidate for candidate in candidates}
            for position, same in cursor.fetchall():
                if same:
                    result.duplicates += 1
                else:
                    _conflict(result, position, source, by_index[position].external_id)
    return {pk: used for pk, (used, _) in added.items()}


def _window(allocation: Allocation, grace: timedelta) -> tuple[datetime, datetime, bool]:
    """When the allocation's jobs may run (its days, and the grace either side), and whether
    it takes usage at all."""
    zone = timezone.get_current_timezone()
    opens = datetime.combine(allocation.start_date, datetime.min.time(), zone) - grace
    closes = (
        datetime.combine(allocation.end_date + timedelta(days=1), datetime.min.time(), zone) + grace
    )
    # The same instants in UTC: each record's times are compared with them, and a fixed
    # offset answers that comparison without a look-up in the zone's rules.
    return opens.astimezone(UTC), closes.astimezone(UTC), allocation.status in ACCEPTING


def used_percent(allocation: Allocation) -> int:
    """Used GPU-seconds as a whole percentage of the current grant."""
    granted_seconds = allocation.granted_gpu_hours * 3600
    if granted_seconds == 0:
        return 100
    return allocation.used_gpu_seconds * 100 // granted_seconds


def _enforce(allocation: Allocation) -> None:
    """Thresholds once each; exhaustion at 100 %. The allocation is locked by the caller."""
    percent = used_percent(allocation)
    crossed = [t for t in THRESHOLDS if allocation.notified_percent < t <= percent]
    if not crossed:
        return
    allocation.notified_percent = crossed[-1]
    fields = ["notified_percent"]
    if percent >= 100 and allocation.status == AllocationStatus.ACTIVE:
        ALLOCATION.move(allocation, AllocationStatus.EXHAUSTED)
        fields.append("status")
        audit_record(
            actor=None,
            verb="allocation.exhausted",
            target=allocation,
            before={"status": AllocationStatus.ACTIVE},
            after={
                "status": AllocationStatus.EXHAUSTED,
                "used_gpu_seconds": allocation.used_gpu_seconds,
            },
        )
        backend_request(allocation=allocation, action=BackendCall.Action.SUSPEND)
    allocation.save(update_fields=fields)
    for threshold in crossed:
        effects.notify_usage_threshold(allocation_id=allocation.pk, threshold=threshold)


def usage_regrant(*, allocation: Allocation) -> str:
    """Measure the thresholds against a grant that just grew (a supplement or an extension):
    the notices not yet passed under the new grant fire again as usage reaches them, and an
    exhausted allocation with hours left is active again. Sets `notified_percent` and
    `status` (the caller saves them) and answers why the scheduler is called: `resume` for
    an allocation exhausted until now, whose GPU jobs may start again; `set_limit` for any
    other (the call raises the limit to the grant and keeps a still exhausted or suspended
    allocation's GPU jobs stopped: it brings the account to the allocation's state).

    The allocation is locked by the caller, inside the granting transaction.
    """
    percent = used_percent(allocation)
    passed = max((t for t in THRESHOLDS if t <= percent), default=0)
    allocation.notified_percent = min(allocation.notified_percent, passed)
    if allocation.status == AllocationStatus.EXHAUSTED and percent < 100:
        # Only an active allocation is exhausted by usage, so its first day has come.
        ALLOCATION.move(allocation, AllocationStatus.ACTIVE)
        return BackendCall.Action.RESUME
    return BackendCall.Action.SET_LIMIT


def usage_pull(*, since: datetime) -> dict[str, int]:
    """The beat's pull: ask the backend for usage since a time and ingest it through the
    same service as the API, under the site scheduler's source (`PORTAL_SLURM_SOURCE`), as
    that scheduler's service account would post it: records of another source are rejected.
    """
    from allocations.backends import get_backend

    reported = get_backend().fetch_usage(since)
    accounts = {
        account_name(pk): pk
        for pk in Allocation.objects.values_list("pk", flat=True).filter(status__in=ACCEPTING)
    }
    records = [
        {
            "source": item.source,
            "external_id": item.external_id,
            "allocation": accounts.get(item.account),
            "gpu_seconds": item.gpu_seconds,
            "started_at": item.started_at,
            "ended_at": item.ended_at,
            "energy_kwh": Decimal(item.energy_kwh) if item.energy_kwh else None,
        }
        for item in reported
    ]
    if not records:
        return {"accepted": 0, "duplicates": 0, "rejected": 0}
    result = usage_ingest(records=records, source=settings.PORTAL_SLURM_SOURCE)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": len(result.rejected),
    }
