"""Operators' actions on an allocation: suspend, resume, revoke."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import authz
from accounts.models import User
from allocations.models import Allocation
from allocations.selectors import demand as selectors
from allocations.serializers.demand import AllocationSerializer
from allocations.services import allocations as services
from portal.apidocs import tags
from portal.endpoints import validated
from portal.serializers import StrictSerializer


class RevokeInputSerializer(StrictSerializer):
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Why: shown to the organization and kept in the audit trail.",
    )


class _OperatorAllocationAction(APIView):
    """Operators only; the service checks it after the scoped lookup, so that a user who may
    not see the allocation is told 404 like everywhere else, and one who sees it 403."""

    service: Callable[..., Allocation]

    def act(
        self, request: Request, pk: UUID, body: type[serializers.Serializer[Any]] | None = None
    ) -> Response:
        """Find the allocation as the user sees it, refuse a non-operator (before the body is
        read), validate the body, call the service."""
        user = request.user
        assert isinstance(user, User)
        allocation = selectors.allocation_get_for_user(user=user, allocation_id=pk)
        authz.require_operator(actor=user)
        arguments: dict[str, Any] = {}
        if body is not None:
            values = validated(body, request.data)
            arguments = {"note": values.get("reason", "")}
        allocation = type(self).service(allocation=allocation, actor=user, **arguments)
        return Response(AllocationSerializer(allocation).data)


class AllocationSuspendView(_OperatorAllocationAction):
    service = services.allocation_suspend

    @extend_schema(
        tags=[tags.OPERATORS],
        summary="Suspend an allocation (operators); the scheduler stops its jobs",
        request=None,
        responses=AllocationSerializer,
    )
    def post(self, request: Request, pk: UUID) -> Response:
        return self.act(request, pk)


class AllocationResumeView(_OperatorAllocationAction):
    service = services.allocation_resume

    @extend_schema(
        tags=[tags.OPERATORS],
        summary="Resume a suspended allocation (operators)",
        request=None,
        responses=AllocationSerializer,
    )
    def post(self, request: Request, pk: UUID) -> Response:
        return self.act(request, pk)


class AllocationRevokeView(_OperatorAllocationAction):
    service = services.allocation_revoke

    @extend_schema(
        tags=[tags.OPERATORS],
        summary="Revoke an allocation for good (operators)",
        description=(
            "Ends the allocation: its days from tomorrow (all of them if it has not started) "
            "go back to the capacity ledger, its GPU-hours leave the organization's quota, "
            "and the scheduler stops its jobs. Final: a revoked allocation is never resumed. "
            "Any status but a final one (`expired`, `released`, `revoked`): another answers "
            "409 `invalid_transition`."
        ),
        request=RevokeInputSerializer,
        responses=AllocationSerializer,
    )
    def post(self, request: Request, pk: UUID) -> Response:
        return self.act(request, pk, body=RevokeInputSerializer)
