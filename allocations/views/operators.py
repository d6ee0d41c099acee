"""Operators' actions on an allocation: suspend, resume, revoke."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import authz
from accounts.authz import signed_in
from allocations.models import Allocation
from allocations.selectors import demand as selectors
from allocations.serializers.demand import AllocationSerializer
from allocations.services import allocations as services
from portal.apidocs import tags
from portal.endpoints import post_documented, validated
from portal.serializers import StrictSerializer


class RevokeInputSerializer(StrictSerializer):
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        help_text="Why: shown to the organization and kept in the audit trail.",
    )


class _OperatorAllocationAction(APIView):
    """POST: operators only; the service checks it after the scoped lookup, so that a user
    who may not see the allocation is told 404 like everywhere else, and one who sees it 403.
    A subclass names its `service` and, if it takes one, its `body`."""

    service: Callable[..., Allocation]
    body: type[serializers.Serializer[Any]] | None = None

    def post(self, request: Request, pk: UUID) -> Response:
        """Find the allocation as the user sees it, refuse a non-operator (before the body is
        read), validate the body, call the service."""
        user = signed_in(request)
        allocation = selectors.allocation_get_for_user(user=user, allocation_id=pk)
        authz.require_operator(actor=user)
        arguments: dict[str, Any] = {}
        if self.body is not None:
            values = validated(self.body, request.data)
            arguments = {"note": values.get("reason", "")}
        allocation = type(self).service(allocation=allocation, actor=user, **arguments)
        return Response(AllocationSerializer(allocation).data)


def _documented(summary: str, description: str | None = None) -> Any:
    """Class decorator: the documentation of an operator's action on an allocation."""

    def document(view: type[_OperatorAllocationAction]) -> Any:
        return post_documented(
            tags.OPERATORS,
            summary,
            description=description,
            request=view.body,
            responses=AllocationSerializer,
        )(view)

    return document


@_documented("Suspend an allocation (operators); the scheduler stops its jobs")
class AllocationSuspendView(_OperatorAllocationAction):
    service = services.allocation_suspend


@_documented("Resume a suspended allocation (operators)")
class AllocationResumeView(_OperatorAllocationAction):
    service = services.allocation_resume


@_documented(
    "Revoke an allocation for good (operators)",
    "Ends the allocation: its days from tomorrow (all of them if it has not started) go back "
    "to the capacity ledger, its GPU-hours leave the organization's quota, and the scheduler "
    "stops its jobs. Final: a revoked allocation is never resumed. Any status but a final one "
    "(`expired`, `released`, `revoked`): another answers 409 `invalid_transition`.",
)
class AllocationRevokeView(_OperatorAllocationAction):
    service = services.allocation_revoke
    body = RevokeInputSerializer
