"""Applications, allocations and the capacity ledger."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import authz
from accounts.authz import signed_in
from accounts.models import Organization
from allocations.models import Allocation, Application, Program
from allocations.selectors import capacity as capacity_selectors
from allocations.selectors import demand as selectors
from allocations.serializers.demand import (
    AllocationSerializer,
    ApplicationSerializer,
    ApplicationWriteSerializer,
    AuditEventSerializer,
    CapacityDaySerializer,
    CapacityQuerySerializer,
    DecisionInputSerializer,
)
from allocations.services import allocations as allocation_services
from allocations.services import applications as services
from audit.models import AuditEvent
from portal.apidocs import tags
from portal.endpoints import PagedListView, paged_list, post_documented
from portal.errors import NotAllowed
from portal.idempotency import idempotent
from portal.pagination import KeysetPagination, OldestFirstKeysetPagination
from portal.serializers import DAY_SCHEMA


def _write_serializer(request: Request, **kwargs: Any) -> ApplicationWriteSerializer:
    """The input serializer with its references scoped to the user: another organization's
    id, or its allocation's, is refused like an id that does not exist."""
    user = signed_in(request)
    serializer = ApplicationWriteSerializer(**kwargs)
    fields = serializer.fields
    fields["organization"].queryset = Organization.objects.filter(memberships__user=user)  # type: ignore[attr-defined]
    fields["program"].queryset = Program.objects.filter(is_open=True)  # type: ignore[attr-defined]
    fields["allocation"].queryset = selectors.allocation_list_for_user(user=user)  # type: ignore[attr-defined]
    return serializer


def _require_member(request: Request, application: Application) -> None:
    if not selectors.is_member(
        user=signed_in(request), organization_id=application.organization_id
    ):
        raise NotAllowed("Only members of the applying organization may do this.")


def _require_reviewer(request: Request, application: Application) -> None:
    # The service checks this too; asking first answers 403 before a body is validated.
    authz.require_decider(actor=signed_in(request), application=application)


@paged_list(
    tags.APPLICATIONS,
    "Applications you may see: your organizations', and those you review",
    "Newest first; pages follow a cursor (see `next`).",
)
class ApplicationListView(PagedListView[Application]):
    serializer_class = ApplicationSerializer
    pagination_class = KeysetPagination
    filterset_fields = ["status", "organization", "program", "pool", "kind"]

    def rows(self) -> QuerySet[Application]:
        return selectors.application_page_rows(
            selectors.application_list_for_user(user=signed_in(self.request))
        )

    @extend_schema(
        tags=[tags.APPLICATIONS],
        summary="Save a draft application for one of your organizations",
        request=ApplicationWriteSerializer,
        responses={201: ApplicationSerializer},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        serializer = _write_serializer(request, data=request.data)
        serializer.is_valid(raise_exception=True)
        application = services.application_create(
            applicant=signed_in(request), values=serializer.validated_data
        )
        return Response(ApplicationSerializer(application).data, status=status.HTTP_201_CREATED)


class ApplicationDetailView(APIView):
    @extend_schema(
        tags=[tags.APPLICATIONS], summary="One application", responses=ApplicationSerializer
    )
    def get(self, request: Request, pk: UUID) -> Response:
        application = selectors.application_get_for_user(user=signed_in(request), application_id=pk)
        return Response(ApplicationSerializer(application).data)

    @extend_schema(
        tags=[tags.APPLICATIONS],
        summary="Edit a draft (members of its organization)",
        request=ApplicationWriteSerializer,
        responses=ApplicationSerializer,
    )
    def patch(self, request: Request, pk: UUID) -> Response:
        application = selectors.application_get_for_user(user=signed_in(request), application_id=pk)
        _require_member(request, application)
        serializer = _write_serializer(
            request, instance=application, data=request.data, partial=True
        )
        serializer.is_valid(raise_exception=True)
        application = services.application_update(
            application=application, values=serializer.validated_data, actor=signed_in(request)
        )
        return Response(ApplicationSerializer(application).data)


class _ApplicationActionView(APIView):
    def application(self, request: Request, pk: UUID) -> Application:
        return selectors.application_get_for_user(user=signed_in(request), application_id=pk)

    def answer(self, application: Application) -> Response:
        fresh = selectors.application_get_for_user(
            user=self.request.user,  # type: ignore[arg-type]
            application_id=application.pk,
        )
        return Response(ApplicationSerializer(fresh).data)


class ApplicationSubmitView(_ApplicationActionView):
    @extend_schema(
        tags=[tags.APPLICATIONS],
        summary="Submit a draft: a worker decides it within seconds",
        request=None,
        responses={202: ApplicationSerializer},
    )
    @idempotent
    def post(self, request: Request, pk: UUID) -> Response:
        application = self.application(request, pk)
        _require_member(request, application)
        services.application_submit(application=application, actor=signed_in(request))
        response = self.answer(application)
        response.status_code = status.HTTP_202_ACCEPTED
        return response


class ApplicationWithdrawView(_ApplicationActionView):
    @extend_schema(
        tags=[tags.APPLICATIONS],
        summary="Withdraw before a final decision; held capacity is released",
        request=None,
        responses=ApplicationSerializer,
    )
    @idempotent
    def post(self, request: Request, pk: UUID) -> Response:
        application = self.application(request, pk)
        _require_member(request, application)
        services.application_withdraw(application=application, actor=signed_in(request))
        return self.answer(application)


class _ReviewerDecisionView(_ApplicationActionView):
    """A reviewer's decision: the program's reviewers only, with a reason for the applicant."""

    decide: Any

    @idempotent
    def post(self, request: Request, pk: UUID) -> Response:
        application = self.application(request, pk)
        _require_reviewer(request, application)
        serializer = DecisionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        type(self).decide(
            application=application,
            actor=signed_in(request),
            note=serializer.validated_data["reason"],
        )
        return self.answer(application)


def _decision_documented(summary: str) -> Any:
    """Class decorator: the documentation of a reviewer's decision."""
    return post_documented(
        tags.REVIEWS, summary, request=DecisionInputSerializer, responses=ApplicationSerializer
    )


@_decision_documented("Approve an application in review (its program's reviewers)")
class ApplicationApproveView(_ReviewerDecisionView):
    decide = services.application_approve


@_decision_documented("Reject an application in review or waitlisted (its program's reviewers)")
class ApplicationRejectView(_ReviewerDecisionView):
    decide = services.application_reject


@paged_list(
    tags.APPLICATIONS,
    "The application's audit trail",
    "Oldest first; pages follow a cursor (see `next`).",
)
class ApplicationEventsView(PagedListView[AuditEvent]):
    serializer_class = AuditEventSerializer
    pagination_class = OldestFirstKeysetPagination

    def rows(self) -> QuerySet[AuditEvent]:
        application = selectors.application_get_for_user(
            user=signed_in(self.request), application_id=self.kwargs["pk"]
        )
        return selectors.application_events(application=application)


@paged_list(
    tags.ALLOCATIONS,
    "Allocations of your organizations (all, for operators)",
    "Newest first; pages follow a cursor (see `next`).",
)
class AllocationListView(PagedListView[Allocation]):
    serializer_class = AllocationSerializer
    pagination_class = KeysetPagination
    filterset_fields = ["status", "organization", "program", "pool", "at_risk"]
    token_scopes = {"usage:write"}  # the scheduler reads allocation limits

    def rows(self) -> QuerySet[Allocation]:
        return selectors.allocation_page_rows(
            selectors.allocation_list_for_user(user=signed_in(self.request))
        )


class AllocationDetailView(APIView):
    token_scopes = {"usage:write"}

    @extend_schema(
        tags=[tags.ALLOCATIONS], summary="One allocation", responses=AllocationSerializer
    )
    def get(self, request: Request, pk: UUID) -> Response:
        allocation = selectors.allocation_get_for_user(user=signed_in(request), allocation_id=pk)
        return Response(AllocationSerializer(allocation).data)


class AllocationReleaseView(APIView):
    @extend_schema(
        tags=[tags.ALLOCATIONS],
        summary="Give the allocation's future days back (its organization's admins)",
        request=None,
        responses=AllocationSerializer,
    )
    @idempotent
    def post(self, request: Request, pk: UUID) -> Response:
        user = signed_in(request)
        allocation = selectors.allocation_get_for_user(user=user, allocation_id=pk)
        allocation = allocation_services.allocation_release(allocation=allocation, actor=user)
        return Response(AllocationSerializer(allocation).data)


class CapacityView(APIView):
    @extend_schema(
        tags=[tags.PROGRAMS_AND_CAPACITY],
        summary="The per-day ledger of a pool, with free GPU-hours per program and power",
        parameters=[
            OpenApiParameter(
                "pool", str, required=True, description="The GPU pool: its id or its name."
            ),
            OpenApiParameter(
                "start", DAY_SCHEMA, description="First day, YYYY-MM-DD (default today)."
            ),
            OpenApiParameter(
                "end", DAY_SCHEMA, description="Last day, included (default start + 30)."
            ),
        ],
        responses=CapacityDaySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = CapacityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        days = capacity_selectors.capacity_days(**query.validated_data)
        return Response(CapacityDaySerializer(days, many=True).data)
