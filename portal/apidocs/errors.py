"""The error codes each operation can answer, with one example body each.

Every error body is `{"code", "message"}` (and `fields` on `validation_error`). The schema
documents, for every error status of every operation, which codes it can carry and shows
one example per code. The codes every operation shares follow from what the operation is
(it reads a body, takes query parameters, needs credentials, names an object, is a list);
the codes of a service's refusals are listed per operation in `OPERATION_ERRORS`, with the
message the service gives there. Messages come from the error classes wherever they have
a fixed one, so that an example says what the portal says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rest_framework import exceptions

from accounts import authz
from accounts.permissions import IsOperator, TokenScopeAllowed
from portal import errors
from portal.serializers import FIRST_DAY, LAST_DAY, UNKNOWN_FIELD_MESSAGE


@dataclass(frozen=True)
class ErrorCode:
    """One code an operation can answer: its HTTP status, an example message, and for a
    `validation_error` the fields of the example."""

    code: str
    status: int
    message: Any  # a str, or a lazily translated one
    summary: str
    fields: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": str(self.message)}
        if self.code == "validation_error":
            body["fields"] = self.fields
        return body


def refusal(error: type[errors.DomainError], summary: str, message: str = "") -> ErrorCode:
    """A service's refusal, with the message it gives in this operation (its default one
    when it has no other)."""
    return ErrorCode(error.code, error.status_code, message or error.default_message, summary)


def denied(message: str, summary: str) -> ErrorCode:
    return ErrorCode("permission_denied", 403, message, summary)


def field_error(name: str, code: str, message: str) -> dict[str, list[dict[str, str]]]:
    return {name: [{"code": code, "message": message}]}


REQUIRED = "This field is required."

MALFORMED = ErrorCode(
    "malformed_request",
    400,
    "JSON parse error - Expecting ',' delimiter: line 1 column 42 (char 41)",
    "The body is not JSON (or nested more than 32 deep)",
)
NOT_AUTHENTICATED = ErrorCode(
    "not_authenticated",
    401,
    str(exceptions.NotAuthenticated.default_detail),
    "No `Authorization: Bearer <token>` header",
)
TOKEN_INVALID = ErrorCode("token_invalid", 401, "The token is not valid.", "An unknown token")
TOKEN_EXPIRED = ErrorCode(
    "token_expired", 401, "The token has expired.", "A token past its `expires_at`"
)
TOKEN_REVOKED = ErrorCode("token_revoked", 401, "The token was revoked.", "A revoked token")
PERMISSION_DENIED = ErrorCode(
    "permission_denied",
    403,
    str(exceptions.PermissionDenied.default_detail),
    "Signed in, but not allowed to do this",
)
OPERATORS_ONLY = ErrorCode(
    "permission_denied", 403, IsOperator.message, "Signed in, but not an operator"
)
TOKEN_SCOPE = ErrorCode(
    "token_scope",
    403,
    TokenScopeAllowed.message,
    "A scheduler's `usage:write` token on a route it does not reach",
)
NOT_FOUND = ErrorCode("not_found", 404, "Not found.", "No such object, or not visible to you")
INVALID_PAGE = ErrorCode("not_found", 404, "Invalid page.", "A page past the last")
THROTTLED = ErrorCode(
    "throttled",
    429,
    "Request was throttled. Expected available in 12 seconds.",
    "Too many requests; wait for `Retry-After` seconds",
)
LOCKED_OUT = ErrorCode(
    "locked_out",
    429,
    "Too many failed sign-ins for this account from this address; try again later.",
    "Too many failed sign-ins; wait for `Retry-After` seconds",
)


def validation_error(summary: str, fields: dict[str, list[dict[str, str]]]) -> ErrorCode:
    return ErrorCode(
        "validation_error", 400, "The request has invalid fields.", summary, fields=fields
    )


UNKNOWN_FIELD = validation_error(
    "A field the operation does not accept",
    field_error("colour", "unknown_field", UNKNOWN_FIELD_MESSAGE),
)
BAD_PAGE_SIZE = validation_error(
    "A page size that is not a whole number from 1 to 500",
    field_error("page_size", "invalid", "Give a whole number from 1 to 500."),
)
DAY_OUT_OF_RANGE = validation_error(
    "A day outside the portal's calendar",
    field_error("start", "date_out_of_range", f"Give a day from {FIRST_DAY} to {LAST_DAY}."),
)


# The refusals of the services, per operation id, beyond the codes every operation shares.
# A new operation that changes something names its refusals here (an empty tuple for none).
_ADMINS_ONLY = denied(
    authz.ONLY_ORGANIZATION_ADMINS, "A member of the organization, not one of its admins"
)
_MEMBERS_ONLY = denied(
    "Only members of the applying organization may do this.",
    "A reviewer or operator who is not a member of the applying organization",
)
_REVIEWERS_ONLY = (
    denied(authz.ONLY_REVIEWERS, "Not a reviewer of the application's program"),
    denied(authz.NOT_OWN_ORGANIZATION, "A reviewer deciding their own organization's application"),
)
_IN_USE = (
    refusal(errors.InUse, "Other rows still refer to it (pools to a site, applications to a pool)"),
)
OPERATION_ERRORS: dict[str, tuple[ErrorCode, ...]] = {
    "auth_token_create": (
        refusal(errors.InvalidCredentials, "A wrong email or password"),
        ErrorCode(
            "scope_not_allowed",
            400,
            errors.ScopeNotAllowed.default_message,
            "A person asking for a `usage:write` token",
        ),
        LOCKED_OUT,
    ),
    "tokens_create": (
        ErrorCode(
            "scope_not_allowed",
            400,
            errors.ScopeNotAllowed.default_message,
            "A person asking for a `usage:write` token",
        ),
    ),
    "tokens_destroy": (),
    "organizations_create": (
        validation_error(
            "A Norwegian organization number that fails its check digit",
            field_error(
                "registry_number",
                "invalid_registry_number",
                "This Norwegian organization number fails its check digit.",
            ),
        ),
    ),
    "organizations_verify": (denied(authz.ONLY_OPERATORS, "Not an operator"),),
    "organizations_members_list": (_ADMINS_ONLY,),
    "organizations_members_destroy": (
        _ADMINS_ONLY,
        refusal(errors.LastAdmin, "Removing the organization's last admin"),
    ),
    "organizations_invitations_list": (_ADMINS_ONLY,),
    "organizations_invitations_create": (
        _ADMINS_ONLY,
        refusal(errors.AlreadyMember, "The email belongs to a member already"),
        refusal(errors.AlreadyInvited, "The email has a pending invitation"),
    ),
    "organizations_invitations_revoke": (
        _ADMINS_ONLY,
        refusal(
            errors.InvalidTransition,
            "The invitation was answered already",
            "The invitation is accepted: it cannot be revoked.",
        ),
    ),
    "invitations_accept": (
        refusal(
            errors.InvalidTransition,
            "The invitation was revoked, declined or accepted",
            "The invitation is revoked: it cannot be accepted.",
        ),
        refusal(errors.InvitationExpired, "The invitation is past its `expires_at`"),
        refusal(errors.AlreadyMember, "You are a member already"),
    ),
    "invitations_decline": (
        refusal(
            errors.InvalidTransition,
            "The invitation was revoked or answered",
            "The invitation is accepted: it cannot be declined.",
        ),
        refusal(errors.InvitationExpired, "The invitation is past its `expires_at`"),
    ),
    "scheduler_accounts_create": (
        ErrorCode(
            "source_taken",
            400,
            errors.SourceTaken.default_message,
            "Another account reports for this source",
        ),
    ),
    "scheduler_accounts_tokens_create": (
        refusal(
            errors.InvalidTransition,
            "The account is deactivated",
            "The scheduler account is deactivated: activate it first.",
        ),
    ),
    "applications_create": (
        validation_error(
            "A window that ends before it starts",
            field_error("end_date", "before_start", "The window ends on or after its first day."),
        ),
    ),
    "applications_partial_update": (
        _MEMBERS_ONLY,
        refusal(
            errors.InvalidTransition,
            "The application is no longer a draft",
            "Only drafts can be edited; this one is submitted.",
        ),
    ),
    "applications_submit": (
        _MEMBERS_ONLY,
        refusal(
            errors.InvalidTransition,
            "The application was submitted already",
            "Only a draft can be submitted; this application is approved.",
        ),
    ),
    "applications_withdraw": (
        _MEMBERS_ONLY,
        refusal(
            errors.InvalidTransition,
            "The application has a final decision",
            "The application is approved: it cannot be withdrawn.",
        ),
    ),
    "applications_approve": (
        *_REVIEWERS_ONLY,
        refusal(
            errors.InvalidTransition,
            "The application is not in review",
            "Only an application in review can be approved; this one is waitlisted.",
        ),
    ),
    "applications_reject": (
        *_REVIEWERS_ONLY,
        refusal(
            errors.InvalidTransition,
            "The application is neither in review nor waitlisted",
            "Only an application in review or waitlisted can be rejected; this one is approved.",
        ),
    ),
    "allocations_release": (
        denied(authz.ONLY_RELEASING_ADMINS, "Not an admin of the allocation's organization"),
        refusal(
            errors.InvalidTransition,
            "Nothing left to release",
            "The allocation was released from 2027-01-15 already.",
        ),
    ),
    "allocations_suspend": (
        denied(authz.ONLY_OPERATORS, "Not an operator"),
        refusal(
            errors.InvalidTransition,
            "The allocation is suspended, expired or revoked",
            "The allocation is suspended: it cannot be suspended.",
        ),
    ),
    "allocations_resume": (
        denied(authz.ONLY_OPERATORS, "Not an operator"),
        refusal(
            errors.InvalidTransition,
            "The allocation is not suspended",
            "The allocation is active: it cannot be resumed.",
        ),
    ),
    "allocations_revoke": (
        denied(authz.ONLY_OPERATORS, "Not an operator"),
        refusal(
            errors.InvalidTransition,
            "The allocation has ended already (expired, released or revoked)",
            "The allocation is expired: it cannot become revoked.",
        ),
    ),
    "usage_create": (
        validation_error(
            "A record of the batch is malformed: nothing is written",
            field_error("records.3.gpu_seconds", "required", REQUIRED),
        ),
    ),
    "programs_create": (
        ErrorCode(
            "shares_exceeded",
            400,
            errors.SharesExceeded.default_message,
            "The programs' nominal shares would pass 1",
        ),
    ),
    "programs_partial_update": (
        ErrorCode(
            "shares_exceeded",
            400,
            errors.SharesExceeded.default_message,
            "The programs' nominal shares would pass 1",
        ),
    ),
    "programs_destroy": _IN_USE,
    "sites_create": (),
    "sites_partial_update": (),
    "sites_power_phases_create": (),
    "sites_power_phases_partial_update": (),
    "accelerators_create": (),
    "accelerators_partial_update": (),
    "pools_create": (),
    "pools_partial_update": (),
    "pools_capacity_events_create": (),
    "pools_capacity_events_partial_update": (),
    "sites_destroy": _IN_USE,
    "sites_power_phases_destroy": _IN_USE,
    "accelerators_destroy": _IN_USE,
    "pools_destroy": _IN_USE,
    "pools_capacity_events_destroy": _IN_USE,
}


# With an Idempotency-Key (writes that accept one) and when a service is away.
IDEMPOTENCY_KEY_INVALID = refusal(
    errors.IdempotencyKeyInvalid, "An Idempotency-Key that is not 1 to 255 printable characters"
)
IDEMPOTENCY_KEY_IN_USE = refusal(
    errors.IdempotencyKeyInUse,
    "A request with the same Idempotency-Key is still being answered; see `Retry-After`",
)
IDEMPOTENCY_KEY_REUSED = refusal(
    errors.IdempotencyKeyReused, "The Idempotency-Key was used for another path or body"
)
UNAVAILABLE = ErrorCode(
    "unavailable",
    503,
    errors.UNAVAILABLE_MESSAGE,
    "The database or the broker is away for a moment; see `Retry-After`",
)
