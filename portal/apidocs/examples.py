"""A request and an answer for every operation, from the demo site (`manage.py load_demo`):
Narvik, its GB300 and H200 pools, the four programs, Fjord AI AS and its founder.

The objects are written once below and reused, so that the ids agree from one operation to
the next as they would in a real session. `tests/portal/test_schema_examples.py` checks every
example against the schema, with every object closed (no field the serializer does not have)
and every field of an answer present, and checks that every operation has its examples.

A list operation's example gives the items; the schema's page envelope is put around them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

_NAMESPACE = uuid.UUID("2f0c6d1e-8a43-4b7e-9d55-3e1f0a6b7c28")


def _id(name: str) -> str:
    """A fixed id per demo object, so that the examples refer to each other."""
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True)
class Example:
    """The examples of one operation. `response` is the success answer's body (for a list,
    its items); `request` the body sent, where the operation takes one."""

    summary: str
    response: Any = None
    request: Any = None

    @classmethod
    def created(
        cls,
        summary: str,
        request: dict[str, Any],
        *,
        like: dict[str, Any],
        name: str,
        **answered: Any,
    ) -> Example:
        """A create: `request` sent; answered as the object `like` with the fields sent, the new
        object's id (of the demo name `name`) and the fields the portal sets (`answered`)."""
        return cls(
            summary, request=request, response={**like, **request, "id": _id(name), **answered}
        )

    @classmethod
    def patch(cls, summary: str, before: dict[str, Any], **changes: Any) -> Example:
        """A partial update: the changed fields sent, the object `before` with them answered."""
        return cls(summary, request=changes, response={**before, **changes})


SITE = {
    "id": _id("site:narvik"),
    "name": "Narvik",
    "country": "NO",
    "pue": "1.10",
    "created_at": "2026-01-05T08:00:00Z",
}
PHASE_1 = {
    "id": _id("phase:1"),
    "site": SITE["id"],
    "name": "Phase 1",
    "power_mw": "230.000",
    "online_from": "2026-01-01",
    "online_until": None,
}
PHASE_2 = {
    **PHASE_1,
    "id": _id("phase:2"),
    "name": "Phase 2",
    "power_mw": "290.000",
    "online_from": "2027-07-01",
}
GB300 = {
    "id": _id("accelerator:gb300"),
    "name": "GB300",
    "board_power_w": 1400,
    "it_power_w": 1900,
    "peak_bf16_flops": 2500000000000000,
}
H200 = {
    "id": _id("accelerator:h200"),
    "name": "H200",
    "board_power_w": 700,
    "it_power_w": 1300,
    "peak_bf16_flops": 989000000000000,
}
POOL_A = {
    "id": _id("pool:narvik-gb300-a"),
    "name": "narvik-gb300-a",
    "site": SITE["id"],
    "accelerator": GB300["id"],
    "availability": "0.950",
    "is_open": True,
    "created_at": "2026-01-05T08:00:00Z",
}
POOL_B = {**POOL_A, "id": _id("pool:narvik-gb300-b"), "name": "narvik-gb300-b"}
POOL_H200 = {
    **POOL_A,
    "id": _id("pool:narvik-h200"),
    "name": "narvik-h200",
    "accelerator": H200["id"],
}
CAPACITY_EVENT = {
    "id": _id("event:narvik-gb300-a"),
    "pool": POOL_A["id"],
    "effective_from": "2026-01-01",
    "gpus_in_service": 100000,
    "note": "installation",
}
MAINTENANCE = {
    "id": _id("event:maintenance"),
    "pool": POOL_A["id"],
    "effective_from": "2027-02-01",
    "gpus_in_service": 96000,
    "note": "Row 12 liquid-cooling maintenance",
}

OPERATOR_ID = _id("user:operator")
FOUNDER_ID = _id("user:founder")
FJORD = {
    "id": _id("organization:fjord-ai"),
    "name": "Fjord AI AS",
    "kind": "startup",
    "country": "NO",
    "registry_number": "926018159",
    "is_verified": True,
    "verified_at": "2026-01-05T08:00:00Z",
    "created_at": "2026-01-05T08:00:00Z",
}
ARCTIC = {
    "id": _id("organization:arctic"),
    "name": "Arctic University Computing Lab",
    "kind": "university",
    "country": "NO",
    "registry_number": "908301668",
    "is_verified": True,
    "verified_at": "2026-01-05T08:00:00Z",
    "created_at": "2026-01-05T08:00:00Z",
}
NORDLYS = {
    "id": _id("organization:nordlys"),
    "name": "Nordlys Robotics AS",
    "kind": "startup",
    "country": "NO",
    "registry_number": "931860917",
    "is_verified": False,
    "verified_at": None,
    "created_at": "2026-01-05T08:00:00Z",
}

_PROGRAM_BASE = {
    "is_open": True,
    "verification_required": True,
    "reviewers": [OPERATOR_ID],
}
NO_RESEARCH = {
    **_PROGRAM_BASE,
    "id": _id("program:no-research"),
    "name": "Norwegian research",
    "slug": "no-research",
    "description": "Universities, research institutes and public bodies in Norway.",
    "priority": 10,
    "eligible_countries": ["NO"],
    "eligible_kinds": ["university", "research_institute", "public_sector"],
    "min_gpu_hours": 100,
    "max_gpu_hours": 500000,
    "max_duration_days": 365,
    "auto_approve_max_gpu_hours": 5000,
    "org_cap_gpu_hours": 1000000,
    "nominal_share": "0.3000",
    "lending_limit": "0.5000",
    "borrowing_limit": "0.2000",
    "turnaround_days": 30,
}
FAST_LANE = {
    **_PROGRAM_BASE,
    "id": _id("program:no-startups-fast-lane"),
    "name": "Norwegian startups fast lane",
    "slug": "no-startups-fast-lane",
    "description": "Norwegian startups: auto-approved up to 10,000 GPU-hours, in days.",
    "priority": 20,
    "eligible_countries": ["NO"],
    "eligible_kinds": ["startup"],
    "min_gpu_hours": 100,
    "max_gpu_hours": 50000,
    "max_duration_days": 90,
    "auto_approve_max_gpu_hours": 10000,
    "org_cap_gpu_hours": 100000,
    "nominal_share": "0.1500",
    "lending_limit": "0.5000",
    "borrowing_limit": "0.1000",
    "turnaround_days": 2,
}
EEA_RESEARCH = {
    **_PROGRAM_BASE,
    "id": _id("program:eea-research-innovation"),
    "name": "EEA research and innovation",
    "slug": "eea-research-innovation",
    "description": "Research and innovation across the EEA, after peer review.",
    "priority": 30,
    "eligible_countries": ["AT", "BE", "DE", "DK", "FI", "FR", "IS", "NO", "SE"],
    "eligible_kinds": [],
    "min_gpu_hours": 1000,
    "max_gpu_hours": 250000,
    "max_duration_days": 180,
    "auto_approve_max_gpu_hours": 0,
    "org_cap_gpu_hours": 500000,
    "nominal_share": "0.2500",
    "lending_limit": "0.5000",
    "borrowing_limit": "0.1000",
    "turnaround_days": 45,
}
COMMERCIAL = {
    **_PROGRAM_BASE,
    "id": _id("program:commercial"),
    "name": "Commercial",
    "slug": "commercial",
    "description": "Companies anywhere, on what the priority tracks leave free.",
    "priority": 40,
    "eligible_countries": [],
    "eligible_kinds": ["company", "startup"],
    "min_gpu_hours": 1000,
    "max_gpu_hours": 1000000,
    "max_duration_days": 365,
    "auto_approve_max_gpu_hours": 0,
    "org_cap_gpu_hours": 2000000,
    "nominal_share": "0.1000",
    "lending_limit": "1.0000",
    "borrowing_limit": "0.2000",
    "turnaround_days": 10,
}

APPLICATION_ID = _id("application:fjord-norwegian-llm")
ALLOCATION_ID = _id("allocation:fjord-norwegian-llm")
DRAFT_REQUEST = {
    "organization": FJORD["id"],
    "program": FAST_LANE["id"],
    "pool": POOL_A["id"],
    "title": "Norwegian instruction-tuned 8B model",
    "summary": "Fine-tune an 8B model on Norwegian public-sector text for citizen services.",
    "gpu_hours": 8000,
    "start_date": "2027-01-04",
    "end_date": "2027-02-28",
    "purpose": "Fine-tuning a language model for Norwegian public services.",
    "risk_category": "limited",
    "data_stays_in_eea": True,
    "model_lineage": "fjord-nb-8b",
}
DRAFT = {
    "id": APPLICATION_ID,
    "organization": FJORD["id"],
    "program": FAST_LANE["id"],
    "pool": POOL_A["id"],
    "applicant": FOUNDER_ID,
    "kind": "new",
    "changes_allocation": None,
    "title": DRAFT_REQUEST["title"],
    "summary": DRAFT_REQUEST["summary"],
    "gpu_hours": 8000,
    "start_date": "2027-01-04",
    "end_date": "2027-02-28",
    "purpose": DRAFT_REQUEST["purpose"],
    "risk_category": "limited",
    "data_stays_in_eea": True,
    "model_lineage": "fjord-nb-8b",
    "status": "draft",
    "reasons": [],
    "failed_day": None,
    "holds_capacity": False,
    "created_at": "2026-12-01T09:12:44Z",
    "submitted_at": None,
    "decided_at": None,
    "allocation": None,
}
SUBMITTED = {**DRAFT, "status": "submitted", "submitted_at": "2026-12-01T09:20:03Z"}
APPROVED = {
    **SUBMITTED,
    "status": "approved",
    "reasons": [
        {
            "code": "auto_approved",
            "message": "Eligible, within quota and capacity: approved.",
        }
    ],
    "decided_at": "2026-12-01T09:20:05Z",
    "allocation": ALLOCATION_ID,
}
IN_REVIEW: dict[str, Any] = {
    **SUBMITTED,
    "id": _id("application:arctic-climate"),
    "organization": ARCTIC["id"],
    "program": NO_RESEARCH["id"],
    "applicant": _id("user:arctic-admin"),
    "title": "Arctic sea-ice foundation model",
    "summary": "Pre-train a vision transformer on 40 years of Arctic satellite imagery.",
    "gpu_hours": 120000,
    "purpose": "Training a climate foundation model.",
    "risk_category": "minimal",
    "model_lineage": "arctic-ice-vit",
    "status": "in_review",
    "reasons": [
        {
            "code": "above_auto_approve",
            "message": "Above 5000 GPU-hours, Norwegian research is decided by a reviewer.",
        }
    ],
    "holds_capacity": True,
    "decided_at": None,
}
DECIDED_BY_REVIEWER = {
    **IN_REVIEW,
    "status": "approved",
    "holds_capacity": False,
    "decided_at": "2026-12-03T14:02:11Z",
    "allocation": _id("allocation:arctic-climate"),
}
REJECTED = {
    **IN_REVIEW,
    "status": "rejected",
    "reasons": [
        *IN_REVIEW["reasons"],
        {"code": "rejected_by_reviewer", "message": "The data plan does not name its licences."},
    ],
    "holds_capacity": False,
    "decided_at": "2026-12-03T14:02:11Z",
}
WITHDRAWN = {**SUBMITTED, "status": "withdrawn", "decided_at": "2026-12-01T10:00:00Z"}
ALLOCATION = {
    "id": ALLOCATION_ID,
    "application": APPLICATION_ID,
    "organization": FJORD["id"],
    "program": FAST_LANE["id"],
    "pool": POOL_A["id"],
    "start_date": "2027-01-04",
    "end_date": "2027-02-28",
    "granted_gpu_hours": 8000,
    "used_gpu_hours": "1250.00",
    "remaining_gpu_hours": "6750.00",
    "used_gpu_seconds": 4500000,
    "energy_estimate_mwh": "16.720",
    "energy_measured_mwh": "2.613",
    "status": "active",
    "at_risk": False,
    "released_from": None,
    "model_lineage": "fjord-nb-8b",
    "created_at": "2026-12-01T09:20:05Z",
}
RELEASED = {
    **ALLOCATION,
    "granted_gpu_hours": 4200,
    "remaining_gpu_hours": "2950.00",
    "energy_estimate_mwh": "8.778",
    "released_from": "2027-02-01",
}
SUSPENDED = {**ALLOCATION, "status": "suspended"}
REVOKED = {**RELEASED, "status": "revoked"}

ME = {
    "id": FOUNDER_ID,
    "email": "founder@fjordai.example",
    "full_name": "Fjord Founder",
    "is_operator": False,
    "memberships": [{"organization": FJORD, "role": "admin"}],
}
TOKEN = {
    "id": _id("token:laptop"),
    "name": "laptop",
    "prefix": "pap_4kq7",
    "scope": "full",
    "created_at": "2026-12-01T09:00:00Z",
    "expires_at": "2027-03-01T09:00:00Z",
    "last_used_at": "2026-12-01T09:20:03Z",
    "revoked_at": None,
    "is_active": True,
}
TOKEN_ISSUED = {
    **TOKEN,
    "last_used_at": None,
    "token": "pap_4kq7Zf1cV9sXo2mB8wTQe5yHnR3uLdJ6aPgK0tW",
}
SCHEDULER_ACCOUNT = {
    "id": _id("user:slurm-narvik"),
    "source": "slurm-narvik",
    "name": "Narvik Slurm",
    "email": "slurm-narvik@scheduler.invalid",
    "is_active": True,
    "created_at": "2026-11-20T10:00:00Z",
}
SCHEDULER_TOKEN = {
    **TOKEN_ISSUED,
    "id": _id("token:exporter"),
    "name": "exporter",
    "prefix": "pap_9rt2",
    "scope": "usage:write",
    "token": "pap_9rt2Hc4LwY7qNs1Ve8XkB3oJm6TzD5gRf0aUpQi",
}
MEMBER = {
    "user": FOUNDER_ID,
    "email": "founder@fjordai.example",
    "full_name": "Fjord Founder",
    "role": "admin",
    "joined_at": "2026-01-05T08:00:00Z",
}
INVITATION = {
    "id": _id("invitation:kari"),
    "email": "kari.nordmann@fjordai.example",
    "role": "member",
    "status": "pending",
    "invited_by": "founder@fjordai.example",
    "created_at": "2026-12-01T09:05:00Z",
    "expires_at": "2026-12-15T09:05:00Z",
    "responded_at": None,
}
RECEIVED_INVITATION = {
    "id": INVITATION["id"],
    "organization": FJORD,
    "role": "member",
    "status": "pending",
    "created_at": "2026-12-01T09:05:00Z",
    "expires_at": "2026-12-15T09:05:00Z",
}


def _program_part(program: dict[str, Any], nominal: int, committed: int, free: int) -> Any:
    return {
        "program": program["id"],
        "program_slug": program["slug"],
        "nominal_gpu_hours": nominal,
        "committed_gpu_hours": committed,
        "held_gpu_hours": 0,
        "free_gpu_hours": free,
    }


# 100,000 GB300 × 24 h × 0.95 availability = 2,280,000 GPU-hours a day.
CAPACITY_DAY = {
    "day": "2027-01-04",
    "gpus_in_service": 100000,
    "capacity_gpu_hours": 2280000,
    "committed_gpu_hours": 143,
    "held_gpu_hours": 2142,
    "free_gpu_hours": 2277715,
    "power_envelope_mw": "230.000",
    "committed_mw": "0.012",
    "held_mw": "0.187",
    "overcommitted": False,
    "programs": [
        _program_part(NO_RESEARCH, 684000, 0, 1140000),
        _program_part(FAST_LANE, 342000, 143, 683857),
        _program_part(EEA_RESEARCH, 570000, 0, 912000),
        _program_part(COMMERCIAL, 228000, 0, 684000),
    ],
}
POOL_DAY = {
    "day": "2027-01-04",
    "gpus_in_service": 100000,
    "capacity_gpu_hours": 2280000,
    "full_load_mw": "209.000",
    "power_envelope_mw": "230.000",
}
AUDIT_EVENTS = [
    {
        "id": _id("event:submit"),
        "created_at": "2026-12-01T09:20:03Z",
        "actor": "founder@fjordai.example",
        "verb": "application.submit",
        "before": {"status": "draft", "submission": 0, "holds_capacity": False},
        "after": {"status": "submitted", "submission": 1, "holds_capacity": False},
        "reasons": [],
    },
    {
        "id": _id("event:decide"),
        "created_at": "2026-12-01T09:20:05Z",
        "actor": None,
        "verb": "application.approved",
        "before": {"status": "submitted", "submission": 1, "holds_capacity": False},
        "after": {"status": "approved", "submission": 1, "holds_capacity": False},
        "reasons": APPROVED["reasons"],
    },
]

_EXPIRY = {"expires_in_days": 90}
_NEW_SITE = {"name": "Mo i Rana", "country": "NO", "pue": "1.08"}
_NEW_PHASE = {
    "name": "Summer curtailment 2027",
    "power_mw": "-40",
    "online_from": "2027-06-01",
    "online_until": "2027-08-31",
}
_NEW_ACCELERATOR = {
    "name": "GB300 NVL72",
    "board_power_w": 1400,
    "it_power_w": 1950,
    "peak_bf16_flops": 2500000000000000,
}
_NEW_POOL = {
    "name": "narvik-gb300-c",
    "site": SITE["id"],
    "accelerator": GB300["id"],
    "availability": "0.950",
    "is_open": False,
}
_NEW_EVENT = {
    "effective_from": "2027-02-01",
    "gpus_in_service": 96000,
    "note": "Row 12 liquid-cooling maintenance",
}
_NEW_PROGRAM = {
    "name": "Nordic public sector",
    "slug": "nordic-public-sector",
    "description": "Public bodies of the Nordic countries.",
    "priority": 25,
    "eligible_countries": ["DK", "FI", "IS", "NO", "SE"],
    "eligible_kinds": ["public_sector"],
    "min_gpu_hours": 100,
    "max_gpu_hours": 100000,
    "max_duration_days": 180,
    "auto_approve_max_gpu_hours": 2000,
    "org_cap_gpu_hours": 200000,
    "nominal_share": "0.05",
    "lending_limit": "0.50",
    "borrowing_limit": "0.05",
    "turnaround_days": 14,
    "reviewers": [OPERATOR_ID],
}
_USAGE_BATCH = {
    "records": [
        {
            "source": "slurm-narvik",
            "external_id": "4242",
            "allocation": ALLOCATION_ID,
            "gpu_seconds": 28800,
            "started_at": "2027-01-05T10:00:00Z",
            "ended_at": "2027-01-05T11:00:00Z",
            "energy_kwh": "16.72",
        },
        {
            "source": "slurm-narvik",
            "external_id": "4243",
            "allocation": ALLOCATION_ID,
            "gpu_seconds": 14400,
            "started_at": "2027-01-05T10:30:00Z",
            "ended_at": "2027-01-05T09:30:00Z",
        },
    ]
}

OPERATION_EXAMPLES: dict[str, Example] = {
    # Sign in
    "root_retrieve": Example(
        "The API's collections",
        response={
            "links": {
                name: f"https://portal.narvik.example/api/v1/{path}"
                for name, path in (
                    ("me", "me/"),
                    ("token-list", "tokens/"),
                    ("organization-list", "organizations/"),
                    ("site-list", "sites/"),
                    ("accelerator-list", "accelerators/"),
                    ("pool-list", "pools/"),
                    ("program-list", "programs/"),
                    ("application-list", "applications/"),
                    ("allocation-list", "allocations/"),
                    ("capacity", "capacity/"),
                )
            }
            | {
                "docs": "https://portal.narvik.example/api/docs/",
                "schema": "https://portal.narvik.example/api/schema/",
            }
        },
    ),
    "auth_token_create": Example(
        "The demo applicant signs in from a laptop",
        request={
            "email": "founder@fjordai.example",
            "password": "fjord-applicant-demo",
            "name": "laptop",
            "expires_in_days": 90,
        },
        response=TOKEN_ISSUED,
    ),
    "me_retrieve": Example("The founder of Fjord AI AS", response=ME),
    "tokens_list": Example("One active token", response=[TOKEN]),
    "tokens_create": Example(
        "A token for a CI job",
        request={"name": "ci", **_EXPIRY},
        response={**TOKEN_ISSUED, "name": "ci"},
    ),
    "tokens_retrieve": Example("A token (never its secret)", response=TOKEN),
    "tokens_destroy": Example("Revoke the laptop's token"),
    "invitations_list": Example("An invitation to Fjord AI AS", response=[RECEIVED_INVITATION]),
    "invitations_accept": Example(
        "Join Fjord AI AS as a member", response={"organization": FJORD, "role": "member"}
    ),
    "invitations_decline": Example(
        "Decline", response={**RECEIVED_INVITATION, "status": "declined"}
    ),
    # Organizations
    "organizations_list": Example("Your organizations", response=[FJORD]),
    "organizations_create": Example(
        "A Norwegian startup, with its organization number",
        request={
            "name": "Nordlys Robotics AS",
            "kind": "startup",
            "country": "NO",
            "registry_number": "931860917",
        },
        response=NORDLYS,
    ),
    "organizations_retrieve": Example("Fjord AI AS", response=FJORD),
    "organizations_members_list": Example("The founder, its admin", response=[MEMBER]),
    "organizations_members_destroy": Example("Remove a member who left"),
    "organizations_invitations_list": Example("A pending invitation", response=[INVITATION]),
    "organizations_invitations_create": Example(
        "Invite a colleague as a member",
        request={"email": "kari.nordmann@fjordai.example", "role": "member"},
        response=INVITATION,
    ),
    "organizations_invitations_revoke": Example(
        "Revoke a pending invitation",
        response={**INVITATION, "status": "revoked", "responded_at": "2026-12-02T08:00:00Z"},
    ),
    # Programs and capacity
    "programs_list": Example(
        "The four demo programs", response=[NO_RESEARCH, FAST_LANE, EEA_RESEARCH, COMMERCIAL]
    ),
    "programs_retrieve": Example("The startups' fast lane", response=FAST_LANE),
    "pools_list": Example("The Narvik pools", response=[POOL_A, POOL_B, POOL_H200]),
    "pools_retrieve": Example("The first GB300 pool", response=POOL_A),
    "pools_availability_list": Example("One day of narvik-gb300-a", response=[POOL_DAY]),
    "capacity_list": Example("One day of narvik-gb300-a, per program", response=[CAPACITY_DAY]),
    # Applications
    "applications_list": Example("Your organization's applications", response=[APPROVED]),
    "applications_create": Example(
        "A draft in the startups' fast lane", request=DRAFT_REQUEST, response=DRAFT
    ),
    "applications_retrieve": Example("Decided: approved within seconds", response=APPROVED),
    "applications_partial_update": Example.patch("Ask for fewer GPU-hours", DRAFT, gpu_hours=6000),
    "applications_submit": Example("Submitted: a worker decides it", response=SUBMITTED),
    "applications_withdraw": Example("Withdrawn before a decision", response=WITHDRAWN),
    "applications_events_list": Example("Submitted, then approved", response=AUDIT_EVENTS),
    # Allocations
    "allocations_list": Example("Fjord AI's allocation", response=[ALLOCATION]),
    "allocations_retrieve": Example("Granted, used and remaining GPU-hours", response=ALLOCATION),
    "allocations_release": Example("Days from 2027-02-01 given back", response=RELEASED),
    # Usage
    "usage_create": Example(
        "Two jobs: one counted, one refused",
        request=_USAGE_BATCH,
        response={
            "accepted": 1,
            "duplicates": 0,
            "rejected": [
                {
                    "index": 1,
                    "code": "ended_before_started",
                    "message": "The job ends before it starts.",
                },
            ],
        },
    ),
    # Reviews
    "applications_approve": Example(
        "A reviewer approves",
        request={"reason": "Strong data plan; fits the program's share."},
        response=DECIDED_BY_REVIEWER,
    ),
    "applications_reject": Example(
        "A reviewer rejects",
        request={"reason": "The data plan does not name its licences."},
        response=REJECTED,
    ),
    # Operators
    "organizations_verify": Example(
        "Nordlys Robotics AS verified",
        response={**NORDLYS, "is_verified": True, "verified_at": "2026-12-02T10:00:00Z"},
    ),
    "allocations_suspend": Example("Suspended: the scheduler stops new jobs", response=SUSPENDED),
    "allocations_resume": Example("Active again", response=ALLOCATION),
    "allocations_revoke": Example(
        "Revoked: days from 2027-02-01 given back, the scheduler stops its jobs",
        request={"reason": "The organization no longer meets the program's terms."},
        response=REVOKED,
    ),
    "scheduler_accounts_list": Example("The Narvik Slurm account", response=[SCHEDULER_ACCOUNT]),
    "scheduler_accounts_create": Example(
        "The account of the Narvik Slurm cluster",
        request={"source": "slurm-narvik", "name": "Narvik Slurm"},
        response=SCHEDULER_ACCOUNT,
    ),
    "scheduler_accounts_tokens_create": Example(
        "A usage:write token for the exporter",
        request={"name": "exporter", **_EXPIRY},
        response=SCHEDULER_TOKEN,
    ),
    # Inventory
    "sites_list": Example("Narvik", response=[SITE]),
    "sites_create": Example.created("A second site", _NEW_SITE, like=SITE, name="site:mo-i-rana"),
    "sites_retrieve": Example("Narvik", response=SITE),
    "sites_partial_update": Example.patch(
        "A better PUE after the heat-reuse upgrade", SITE, pue="1.08"
    ),
    "sites_destroy": Example("Delete a site nothing refers to"),
    "sites_power_phases_list": Example("Narvik's two phases", response=[PHASE_1, PHASE_2]),
    "sites_power_phases_create": Example.created(
        "A curtailment: a negative phase for a window",
        _NEW_PHASE,
        like=PHASE_1,
        name="phase:curtailment",
        power_mw="-40.000",
    ),
    "sites_power_phases_retrieve": Example("Phase 2 from July 2027", response=PHASE_2),
    "sites_power_phases_partial_update": Example.patch(
        "Phase 2 a month later", PHASE_2, online_from="2027-08-01"
    ),
    "sites_power_phases_destroy": Example("Delete a power phase"),
    "accelerators_list": Example("GB300 and H200", response=[GB300, H200]),
    "accelerators_create": Example.created(
        "A new accelerator model", _NEW_ACCELERATOR, like={}, name="accelerator:gb300-nvl72"
    ),
    "accelerators_retrieve": Example("GB300", response=GB300),
    "accelerators_partial_update": Example.patch(
        "Measured IT power per GPU", GB300, it_power_w=1950
    ),
    "accelerators_destroy": Example("Delete an accelerator model no pool uses"),
    "pools_create": Example.created(
        "A third GB300 pool, closed until it is installed",
        _NEW_POOL,
        like=POOL_A,
        name="pool:narvik-gb300-c",
    ),
    "pools_partial_update": Example.patch(
        "Close a pool to new applications", POOL_A, is_open=False
    ),
    "pools_destroy": Example("Delete a pool nothing refers to"),
    "pools_capacity_events_list": Example(
        "Installed, then a maintenance", response=[CAPACITY_EVENT, MAINTENANCE]
    ),
    "pools_capacity_events_create": Example(
        "A maintenance window starts", request=_NEW_EVENT, response=MAINTENANCE
    ),
    "pools_capacity_events_retrieve": Example("The installation", response=CAPACITY_EVENT),
    "pools_capacity_events_partial_update": Example.patch(
        "Fewer GPUs out", MAINTENANCE, gpus_in_service=98000
    ),
    "pools_capacity_events_destroy": Example("Delete a capacity event"),
    "programs_create": Example.created(
        "A new program",
        _NEW_PROGRAM,
        like=_PROGRAM_BASE,
        name="program:nordic-public-sector",
        nominal_share="0.0500",
        lending_limit="0.5000",
        borrowing_limit="0.0500",
    ),
    "programs_partial_update": Example.patch(
        "Raise the fast lane's auto-approval limit", FAST_LANE, auto_approve_max_gpu_hours=15000
    ),
    "programs_destroy": Example("Delete a program no application refers to"),
    # Reports
    "reports_capacity_list": Example(
        "One day of Narvik",
        response=[
            {
                "day": "2027-01-04",
                "capacity_gpu_hours": 4560000 + 46694,
                "committed_gpu_hours": 143,
                "held_gpu_hours": 2142,
                "used_gpu_hours": "0.00",
                "free_gpu_hours": 4604409,
                "power_envelope_mw": "230.000",
                "committed_mw": "0.012",
                "held_mw": "0.187",
                "programs": {"no-startups-fast-lane": 143},
            },
        ],
    ),
    "reports_shares_retrieve": Example(
        "Most hours to Norwegian organizations",
        response={
            "granted_gpu_hours": 128000,
            "norwegian_fraction": "1.0000",
            "by_program": [
                {"key": "no-research", "granted_gpu_hours": 120000, "used_gpu_hours": "0.00"},
                {
                    "key": "no-startups-fast-lane",
                    "granted_gpu_hours": 8000,
                    "used_gpu_hours": "1250.00",
                },
            ],
            "by_country": [{"key": "NO", "granted_gpu_hours": 128000, "used_gpu_hours": "1250.00"}],
            "by_organization_kind": [
                {"key": "startup", "granted_gpu_hours": 8000, "used_gpu_hours": "1250.00"},
                {"key": "university", "granted_gpu_hours": 120000, "used_gpu_hours": "0.00"},
            ],
        },
    ),
    "reports_turnaround_list": Example(
        "Decision times against each program's target",
        response=[
            {
                "program": "no-startups-fast-lane",
                "turnaround_days": 2,
                "decided": 14,
                "median_hours": 0.001,
                "p90_hours": 0.002,
                "within_target_fraction": 1.0,
            },
            {
                "program": "eea-research-innovation",
                "turnaround_days": 45,
                "decided": 0,
                "median_hours": None,
                "p90_hours": None,
                "within_target_fraction": None,
            },
        ],
    ),
}
