"""Usage from the scheduler."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AccessToken, TokenScope, User
from accounts.permissions import DEFAULT_PERMISSIONS
from allocations.serializers.usage import (
    UsageBatchInputSerializer,
    UsageBatchResultSerializer,
    usage_batch_validate,
)
from allocations.services import usage as services
from portal.apidocs import tags
from portal.idempotency import idempotent


class HasSchedulerToken(permissions.BasePermission):
    """Usage is posted with a `usage:write` token of a scheduler service account, never a
    person's (tokens people held before are revoked, and refused here all the same)."""

    message = "Usage is posted with a scheduler service account's `usage:write` token."
    code = "token_scope"

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        return (
            isinstance(token, AccessToken)
            and token.scope == TokenScope.USAGE_WRITE
            and isinstance(request.user, User)
            and request.user.is_scheduler
        )


class UsageView(APIView):
    permission_classes = [*DEFAULT_PERMISSIONS, HasSchedulerToken]
    token_scopes = {TokenScope.USAGE_WRITE}
    throttle_scope = "usage"

    @extend_schema(
        tags=[tags.USAGE],
        summary="Post a batch of up to 10,000 usage records (a scheduler account's token)",
        description=(
            "Only a scheduler service account's `usage:write` token posts usage, and only for "
            "its own source: a record of another source is rejected (`wrong_source`). "
            "Idempotent by (source, external_id): posting the same batch twice counts it once; "
            "a job re-posted with other content is rejected (`conflicting_record`) and "
            "changes nothing. A malformed batch writes nothing; a well-formed one answers for "
            "each record."
        ),
        request=UsageBatchInputSerializer,
        responses=UsageBatchResultSerializer,
    )
    @idempotent
    def post(self, request: Request) -> Response:
        # The serializer's validation, without building its fields for every record.
        records = usage_batch_validate(request.data)
        assert isinstance(request.user, User)
        assert request.user.scheduler_source is not None
        result = services.usage_ingest(records=records, source=request.user.scheduler_source)
        return Response(UsageBatchResultSerializer(result).data)
