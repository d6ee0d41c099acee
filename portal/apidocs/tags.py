"""The schema's tags, in the order of an applicant's journey (sign in, read programs and
capacity, draft, submit, follow, use, release), then the reviewers' and operators' ones.
Swagger UI and ReDoc show them in this order; an operation names one of these."""

from __future__ import annotations

SIGN_IN = "Sign in"
ORGANIZATIONS = "Organizations"
PROGRAMS_AND_CAPACITY = "Programs and capacity"
APPLICATIONS = "Applications"
ALLOCATIONS = "Allocations"
USAGE = "Usage"
REVIEWS = "Reviews"
OPERATORS = "Operators"
INVENTORY = "Inventory"
REPORTS = "Reports"

TAGS: list[dict[str, str]] = [
    {
        "name": SIGN_IN,
        "description": (
            "Step 1. Exchange your email and password for a personal access token "
            "(`POST /api/v1/auth/token/`) and send it as `Authorization: Bearer <token>`. "
            "See who you are and which organizations you belong to (`GET /api/v1/me/`), "
            "manage your tokens, and answer invitations to join an organization."
        ),
    },
    {
        "name": ORGANIZATIONS,
        "description": (
            "Applications are made for an organization. Create one (you become its admin; "
            "an operator verifies it before it can be granted GPU-hours), invite members "
            "and manage them."
        ),
    },
    {
        "name": PROGRAMS_AND_CAPACITY,
        "description": (
            "Step 2. Read the open programs (access tracks with their priority, eligibility, "
            "request bounds in GPU-hours and auto-approval limit), the GPU pools, and the free "
            "GPU-hours per day of a pool and program before you apply. Days are calendar days "
            "in Europe/Oslo."
        ),
    },
    {
        "name": APPLICATIONS,
        "description": (
            "Steps 3 to 5. Draft an application for GPU-hours in a pool, edit it while it is a "
            "draft, submit it (a worker decides it within seconds: `approved`, `in_review`, "
            "`waitlisted` or `rejected`, with reasons that carry stable codes), follow its "
            "status and audit trail, or withdraw it before a final decision."
        ),
    },
    {
        "name": ALLOCATIONS,
        "description": (
            "Steps 6 and 7. An approved application makes an allocation: granted, used and "
            "remaining GPU-hours, energy in MWh, and its status. Your organization's admins "
            "give its future days back with `release`."
        ),
    },
    {
        "name": USAGE,
        "description": (
            "The cluster's scheduler posts usage records (GPU-seconds per job) with its "
            "service account's `usage:write` token. Posting is idempotent per source and "
            "job id."
        ),
    },
    {
        "name": REVIEWS,
        "description": (
            "A program's reviewers approve or reject the applications that need a person: "
            "those above the auto-approval limit, high-risk AI uses, systemic-risk lineages."
        ),
    },
    {
        "name": OPERATORS,
        "description": (
            "Operators (staff) verify organizations, suspend and resume allocations, and run "
            "the scheduler service accounts."
        ),
    },
    {
        "name": INVENTORY,
        "description": (
            "The supply, read by every user and written by operators: sites and their power "
            "phases (MW), accelerator models (W, FLOP/s), GPU pools and their GPUs in service "
            "over time, and the programs' rules."
        ),
    },
    {
        "name": REPORTS,
        "description": (
            "The capacity timeline per day (operators), the shares granted by program, country "
            "and organization kind, and the decision turnaround per program."
        ),
    },
]

TAG_NAMES = [tag["name"] for tag in TAGS]
