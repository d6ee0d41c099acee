"""What each operation does, for a reader of the docs: who may call it, what it changes, the
units it counts in. An operation whose `@extend_schema` gives a description keeps that one;
the views' docstrings, written for the code's readers, never reach the docs."""

from __future__ import annotations

_INVENTORY_READ = "Every signed-in user reads the inventory."
_INVENTORY_WRITE = (
    "Operators only. The change is checked by the same rules as in the admin and written to "
    "the audit trail."
)
_INVENTORY_DELETE = "Operators only. Refused with 409 `in_use` while other rows still refer to it."

DESCRIPTIONS: dict[str, str] = {
    # Sign in
    "root_retrieve": "Links to the API's main collections, the interactive docs and the schema. "
    "Open to anyone.",
    "auth_token_create": "Step 1 of the journey. Exchange the email and password of your "
    "account for a personal access token (scope `full`), and send it as "
    "`Authorization: Bearer <token>` from then on. The secret is in this answer only. Repeated "
    "wrong passwords lock the account out from your address for a while (429 `locked_out`).",
    "me_retrieve": "Your account, whether you are an operator, and the organizations you "
    "belong to with your role in each: the `organization` id an application is made for.",
    "tokens_list": "Your personal access tokens, newest first, active or not; never their secrets.",
    "tokens_create": "A further token for a client tool, with a name and an expiry in days. "
    "The secret is in this answer only.",
    "tokens_retrieve": "One of your tokens, without its secret.",
    "tokens_destroy": "Revoke one of your tokens: requests with it answer 401 "
    "`token_revoked` from then on. Revoking a revoked token changes nothing.",
    "invitations_list": "The invitations to your email that are still pending.",
    "invitations_decline": "Decline an invitation to your email; the organization's admins "
    "see it as declined.",
    # Organizations
    "organizations_list": "The organizations you belong to; operators see all of them.",
    "organizations_create": "Create an organization and become its admin. A Norwegian "
    "organization gives its 9-digit organization number, checked by its check digit. An "
    "operator verifies the organization before any of its applications can be granted hours.",
    "organizations_retrieve": "One organization you belong to (any, for operators).",
    "organizations_members_list": "The organization's members with their roles; its admins only.",
    "organizations_members_destroy": "Remove a member; its admins only. The last admin "
    "cannot be removed (409 `last_admin`).",
    "organizations_invitations_list": "The organization's invitations, newest first, with "
    "their status; its admins only.",
    "organizations_invitations_revoke": "Revoke a pending invitation, so it can no longer be "
    "accepted; its admins only.",
    # Programs and capacity
    "programs_list": "Step 2. The open programs, in priority order: who is eligible "
    "(countries, organization kinds), the bounds of a request in GPU-hours and days, the "
    "auto-approval limit, the most GPU-hours one organization may hold, and each program's "
    "share of every pool. Operators also see closed programs.",
    "programs_retrieve": "One program and its rules.",
    "pools_list": "The GPU pools: a partition of one accelerator model at one site, such as "
    "`narvik-gb300-a`. An application names the pool it wants hours in.",
    "pools_retrieve": "One GPU pool.",
    "pools_availability_list": "Day by day from `start` to `end` (calendar days in "
    "Europe/Oslo): the pool's GPUs in service, the GPU-hours it can deliver (GPUs × 24 × "
    "availability), its draw at full load in MW and the site's power envelope in MW.",
    "capacity_list": "Step 2. The ledger of a pool, day by day: capacity, committed, held and "
    "free GPU-hours, the site's power envelope and committed power in MW, and per program "
    "its nominal GPU-hours and what it could still take that day. A request is spread evenly "
    "over the days of its window; it fits when every day has room.",
    # Applications
    "applications_list": "Step 5. The applications you may see: your organizations', and "
    "those of the programs you review. Filter by `status`, `organization`, `program`, "
    "`pool` or `kind`.",
    "applications_create": "Step 3. Save a draft application for one of your "
    "organizations: the program, the pool, the GPU-hours, the window (calendar days in "
    "Europe/Oslo) and the AI-use declaration. Nothing is checked against capacity until it is "
    "submitted. A supplement or an extension names the `allocation` it changes.",
    "applications_retrieve": "Step 5. One application: follow its `status` after submitting "
    "until a worker or a reviewer decides it; `reasons` explain the decision with stable "
    "codes, and `allocation` names the allocation an approval made.",
    "applications_partial_update": "Change a draft; members of its organization only. A "
    "submitted application can no longer be edited (409 `invalid_transition`).",
    "applications_submit": "Step 4. Submit a draft; members of its organization only. The "
    "answer is 202 at once; a worker checks eligibility, bounds, AI use, quota and capacity "
    "day by day, and decides within seconds: `approved`, `in_review` (capacity held for the "
    "reviewer), `waitlisted` (with the first day that did not fit) or `rejected`.",
    "applications_withdraw": "Withdraw an application before its final decision; members of "
    "its organization only. Capacity held for it is released at once.",
    "applications_events_list": "The application's audit trail, oldest first: who did what "
    "and when, with the state before and after and the reasons given.",
    # Allocations
    "allocations_list": "Step 6. The allocations of your organizations (all, for operators "
    "and the scheduler's service account): granted, used and remaining GPU-hours, the "
    "energy in MWh, and the status the scheduler enforces.",
    "allocations_retrieve": "Step 6. One allocation: what is granted, used (from the "
    "scheduler's usage records) and remaining, in GPU-hours.",
    "allocations_release": "Step 7. Give back the allocation's days from tomorrow "
    "(Europe/Oslo) on, or all of them if it has not started: the grant is lowered by the "
    "GPU-hours those days held, and the capacity frees for the waitlist. Its organization's "
    "admins (or an operator holding the "
    "`change_allocation` permission) only.",
    # Reviews
    "applications_approve": "Approve an application in review, with a reason shown to the "
    "applicant; reviewers of its program only, never for their own organization. Its capacity "
    "was held at submission, so an approval never fails for capacity.",
    "applications_reject": "Reject an application in review or waitlisted, with a reason "
    "shown to the applicant; reviewers of its program only, never for their own "
    "organization. Held capacity is released.",
    # Operators
    "organizations_verify": "Verify an organization (its identity and registry number); "
    "operators only. Only verified organizations can be granted GPU-hours. Its admins are "
    "told by email.",
    "allocations_suspend": "Suspend an allocation; operators only. The scheduler backend "
    "stops new GPU jobs of its account; running jobs finish and are counted.",
    "allocations_resume": "Resume a suspended allocation; operators only. Waiting jobs start "
    "again.",
    "scheduler_accounts_list": "The scheduler service accounts, one per usage source (one "
    "cluster); operators only.",
    "scheduler_accounts_tokens_create": "Issue a `usage:write` token to a scheduler service "
    "account, for its usage exporter; operators only. The secret is in this answer only.",
    # Inventory
    "sites_list": f"The datacenter sites with their PUE. {_INVENTORY_READ}",
    "sites_create": f"Add a site. {_INVENTORY_WRITE}",
    "sites_retrieve": f"One site. {_INVENTORY_READ}",
    "sites_partial_update": "Change a site. A new PUE re-prices the energy of every "
    f"reservation that reaches today or later. {_INVENTORY_WRITE}",
    "sites_destroy": f"Delete a site. {_INVENTORY_DELETE}",
    "sites_power_phases_list": "The site's power phases: the facility power in MW each adds "
    "from `online_from` (until `online_until`); the envelope on a day is the sum of the "
    f"phases online that day. {_INVENTORY_READ}",
    "sites_power_phases_create": "Add a power phase; a curtailment is a phase of negative MW "
    "for a window. Capacity that shrinks under commitments cancels nothing: the days are "
    f"reported overcommitted. {_INVENTORY_WRITE}",
    "sites_power_phases_retrieve": f"One power phase. {_INVENTORY_READ}",
    "sites_power_phases_partial_update": f"Change a power phase. {_INVENTORY_WRITE}",
    "sites_power_phases_destroy": f"Delete a power phase. {_INVENTORY_DELETE}",
    "accelerators_list": "The accelerator models: board power and IT power per GPU in W, "
    f"peak dense BF16 FLOP/s. {_INVENTORY_READ}",
    "accelerators_create": f"Add an accelerator model. {_INVENTORY_WRITE}",
    "accelerators_retrieve": f"One accelerator model. {_INVENTORY_READ}",
    "accelerators_partial_update": "Change an accelerator model. A new IT power re-prices "
    f"the energy of the reservations in its pools. {_INVENTORY_WRITE}",
    "accelerators_destroy": f"Delete an accelerator model. {_INVENTORY_DELETE}",
    "pools_create": "Add a GPU pool; its GPUs in service come from its capacity events. "
    f"{_INVENTORY_WRITE}",
    "pools_partial_update": "Change a pool; a closed pool takes no new applications. "
    f"{_INVENTORY_WRITE}",
    "pools_destroy": f"Delete a pool. {_INVENTORY_DELETE}",
    "pools_capacity_events_list": "The pool's GPUs in service over time: each event sets the "
    "count from its day on (installation, expansion; a maintenance window is two events). "
    f"{_INVENTORY_READ}",
    "pools_capacity_events_create": "Add a capacity event; capacity that grows re-checks the "
    f"waitlist. {_INVENTORY_WRITE}",
    "pools_capacity_events_retrieve": f"One capacity event. {_INVENTORY_READ}",
    "pools_capacity_events_partial_update": f"Change a capacity event. {_INVENTORY_WRITE}",
    "pools_capacity_events_destroy": f"Delete a capacity event. {_INVENTORY_DELETE}",
    "programs_create": "Add a program. The nominal shares of all programs sum to at most 1 "
    f"(400 `shares_exceeded`). {_INVENTORY_WRITE}",
    "programs_partial_update": "Change a program's rules or reviewers. The nominal shares of "
    f"all programs sum to at most 1 (400 `shares_exceeded`). {_INVENTORY_WRITE}",
    "programs_destroy": f"Delete a program. {_INVENTORY_DELETE}",
    # Reports
    "reports_capacity_list": "Per day of a site or a pool: capacity, committed, held, used "
    "and free GPU-hours, the power envelope and committed power in MW, and committed "
    "GPU-hours per program; operators only.",
    "reports_shares_retrieve": "Granted and used GPU-hours by program, country and "
    "organization kind, and the fraction granted to Norwegian organizations: the local "
    "priority promise, measured. Open to every signed-in user.",
    "reports_turnaround_list": "Hours from submission to decision per program (median and "
    "90th percentile) and the fraction decided within the program's published turnaround in "
    "days. Open to every signed-in user.",
}
