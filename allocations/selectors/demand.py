"""Reads of applications and allocations, each scoped to who asks: what a user may not see
answers 404."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from django.db.models import BooleanField, Expression, F, Q, QuerySet, Subquery

from accounts.models import Membership, User
from allocations.models import Allocation, Application, ApplicationStatus, Program
from audit.models import AuditEvent
from portal.queries import first_or_404


def _member_organizations(user: User) -> QuerySet[Membership, Any]:
    return Membership.objects.filter(user=user).values("organization_id")


class InSubquery(Expression):
    """`column IN (subquery)`, written on PostgreSQL as `column = ANY(ARRAY(subquery))`: the
    subquery then runs once, before the scan, and its answer is a plain filter of the rows.
    As `IN`, the planner makes it a join whose size it guesses, and at a thousand rows may
    join and sort them all for a page of 50 (12 ms) instead of reading the newest 51 by the
    index of the ordering (0.3 ms)."""

    output_field = BooleanField()

    def __init__(self, column: str, subquery: QuerySet[Any, Any]) -> None:
        super().__init__()
        # Unordered, as `__in` leaves it: an ordering would join the tables it names.
        self.column, self.subquery = F(column), Subquery(subquery.order_by())

    def get_source_expressions(self) -> list[Any]:
        return [self.column, self.subquery]

    def set_source_expressions(self, expressions: Sequence[Any]) -> None:
        self.column, self.subquery = expressions

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        column, column_params = compiler.compile(self.column)
        subquery, subquery_params = compiler.compile(self.subquery)
        return f"{column} IN {subquery}", (*column_params, *subquery_params)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        column, column_params = compiler.compile(self.column)
        subquery, subquery_params = compiler.compile(self.subquery)
        return f"{column} = ANY(ARRAY{subquery})", (*column_params, *subquery_params)


def _reviewed_programs(user: User) -> QuerySet[Program, Any]:
    return Program.objects.filter(reviewers=user).values("pk")


def application_list_for_user(*, user: User) -> QuerySet[Application]:
    """Operators see all; members their organizations'; reviewers their programs', once
    submitted (a draft is its organization's business)."""
    applications = Application.objects.select_related(
        "organization", "program", "pool", "applicant", "granted_allocation"
    )
    if not user.is_staff:
        applications = applications.filter(
            Q(organization_id__in=_member_organizations(user))
            | (Q(program_id__in=_reviewed_programs(user)) & ~Q(status=ApplicationStatus.DRAFT))
        )
    return applications.order_by("-created_at", "-id")


def application_page_rows(applications: QuerySet[Application]) -> QuerySet[Application]:
    """The rows of a list page: no related row loaded, the granted allocation's id read with
    the row (`ApplicationSerializer` writes ids only)."""
    return applications.select_related(None).annotate(
        granted_allocation_pk=F("granted_allocation__id")
    )


def application_get_for_user(*, user: User, application_id: UUID | str) -> Application:
    return first_or_404(application_list_for_user(user=user).filter(pk=application_id))


def is_member(*, user: User, organization_id: UUID) -> bool:
    return Membership.objects.filter(user=user, organization_id=organization_id).exists()


def application_events(*, application: Application) -> QuerySet[AuditEvent]:
    """The application's audit trail, oldest first (by the index of its target)."""
    return (
        AuditEvent.objects.filter(
            target_type__app_label="allocations",
            target_type__model="application",
            target_id=application.pk,
        )
        .select_related("actor")
        .order_by("created_at", "id")
    )


def allocation_list_for_user(*, user: User) -> QuerySet[Allocation]:
    """Operators see all; members their organizations'. A scheduler service account reads
    every allocation's limits: it runs every organization's jobs."""
    allocations = Allocation.objects.select_related("pool__site", "pool__accelerator")
    if not (user.is_staff or user.is_scheduler):
        allocations = allocations.filter(InSubquery("organization_id", _member_organizations(user)))
    return allocations.order_by("-created_at", "-id")


def allocation_page_rows(allocations: QuerySet[Allocation]) -> QuerySet[Allocation]:
    """The rows of a list page: the pool's IT power per GPU and its site's PUE read with the
    row (for the energy estimate), no related row loaded."""
    return allocations.select_related(None).annotate(
        pool_it_power_w=F("pool__accelerator__it_power_w"), pool_pue=F("pool__site__pue")
    )


def allocation_get_for_user(*, user: User, allocation_id: UUID | str) -> Allocation:
    return first_or_404(allocation_list_for_user(user=user).filter(pk=allocation_id))
