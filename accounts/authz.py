"""Who may do what: the one rule set that the API, the admin, the `portal` client and the
tasks obey, because the services that change state check it themselves.

A service takes the acting identity: a signed-in `User`, or `SYSTEM` when the portal acts on
its own (the worker's decision, the beat's expiries, the demo loader). `SYSTEM` is an object
to import on purpose, not a flag in a request: no view can pass it by accident, and `None`
(or an anonymous user) is refused like a stranger.

A refusal is `NotVisible` (answered 404) when the user may not even see the object, and
`NotAllowed` (403) when they see it but may not do this. Views still scope what they read
through the selectors first; these checks are what stands when a caller forgot to.

The rules:
- deciding an application: a reviewer of its program who is no member of the applying
  organization (an operator is not a reviewer by being staff);
- releasing an allocation: an admin of its organization, or an operator who holds the
  `allocations.change_allocation` permission;
- managing members and invitations: an admin of the organization, or an operator;
- suspending, resuming and revoking allocations, verifying organizations, writing the inventory and
  the programs: operators (staff). The admin asks for the model permission on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from accounts.models import Membership, MembershipRole, User
from portal.errors import NotAllowed, NotVisible

if TYPE_CHECKING:
    from allocations.models import Allocation, Application


@dataclass(frozen=True)
class SystemActor:
    """The portal itself. Audit events record it as no actor."""

    name: str

    def __str__(self) -> str:
        return self.name


SYSTEM = SystemActor("system")

Actor = User | SystemActor

ONLY_OPERATORS = "Only operators may do this."
ONLY_ORGANIZATION_ADMINS = "Only the organization's admins may do this."
ONLY_REVIEWERS = "Only reviewers of the application's program may decide it."
NOT_OWN_ORGANIZATION = "Reviewers do not decide their own organization's applications."
ONLY_RELEASING_ADMINS = "Only the organization's admins may release its allocations."


def signed_in(request: Any) -> User:
    """The user of a request that the view's permissions (or the admin's login) have let
    through: a `User`, typed as one for the services it is handed to."""
    user = request.user
    assert isinstance(user, User), "a view reached without a signed-in user"
    return user


def person(actor: Actor | None) -> User | None:
    """The user behind an identity, `None` for the system; anyone else is refused."""
    if isinstance(actor, SystemActor):
        return None
    if isinstance(actor, User) and actor.is_authenticated and actor.is_active:
        return actor
    raise NotVisible()


def _role(user: User, organization_id: Any) -> str | None:
    return (
        Membership.objects.filter(user=user, organization_id=organization_id)
        .values_list("role", flat=True)
        .first()
    )


def require_operator(*, actor: Actor | None) -> None:
    """Operators (staff) only: suspensions, verification, the inventory and programs."""
    user = person(actor)
    if user is not None and not user.is_staff:
        raise NotAllowed(ONLY_OPERATORS)


def require_organization_admin(*, actor: Actor | None, organization_id: UUID | str) -> None:
    """An admin of the organization, or an operator: members and invitations."""
    user = person(actor)
    if user is None or user.is_staff:
        return
    role = _role(user, organization_id)
    if role is None:
        raise NotVisible()
    if role != MembershipRole.ADMIN:
        raise NotAllowed(ONLY_ORGANIZATION_ADMINS)


def require_decider(*, actor: Actor | None, application: Application) -> None:
    """A reviewer of the application's program, never a member of its organization."""
    from allocations.models import Program

    user = person(actor)
    if user is None:
        return
    reviews = Program.reviewers.through.objects.filter(
        program_id=application.program_id, user_id=user.pk
    ).exists()
    member = _role(user, application.organization_id) is not None
    # A draft is refused by its status (409) rather than hidden here: the API's selectors
    # already answer a reviewer's request for a draft with a 404.
    if not (user.is_staff or member or reviews):
        raise NotVisible()
    if not reviews:
        raise NotAllowed(ONLY_REVIEWERS)
    if member:
        raise NotAllowed(NOT_OWN_ORGANIZATION)


def require_releaser(*, actor: Actor | None, allocation: Allocation) -> None:
    """An admin of the allocation's organization, or an operator granted the change of
    allocations (the admin's release action)."""
    user = person(actor)
    if user is None:
        return
    if user.is_staff and user.has_perm("allocations.change_allocation"):
        return
    role = _role(user, allocation.organization_id)
    if role is None and not user.is_staff:
        raise NotVisible()
    if role != MembershipRole.ADMIN:
        raise NotAllowed(ONLY_RELEASING_ADMINS)
