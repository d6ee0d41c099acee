from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet
from django.utils.cache import patch_cache_control
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import authz, selectors, services
from accounts.authz import signed_in
from accounts.models import AccessToken, Invitation, Membership, Organization, User
from accounts.permissions import DEFAULT_PERMISSIONS, IsOperator
from accounts.serializers import (
    InvitationCreateInputSerializer,
    InvitationSerializer,
    MemberSerializer,
    MembershipOrganizationSerializer,
    MeSerializer,
    OrganizationCreateInputSerializer,
    OrganizationSerializer,
    ReceivedInvitationSerializer,
    SchedulerAccountCreateInputSerializer,
    SchedulerAccountSerializer,
    SchedulerTokenIssueInputSerializer,
    TokenCreateInputSerializer,
    TokenIssuedSerializer,
    TokenObtainInputSerializer,
    TokenSerializer,
)
from portal.apidocs import tags
from portal.endpoints import PagedListView, created, paged_list, validated
from portal.idempotency import idempotent
from portal.schema import ErrorSerializer


def _issued(issued: services.IssuedToken) -> Response:
    """201 with the token and its secret; never stored by a cache on the way."""
    data = dict(TokenSerializer(issued.token).data)
    data["token"] = issued.secret
    response = Response(data, status=status.HTTP_201_CREATED)
    patch_cache_control(response, no_store=True)
    return response


class TokenObtainView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_scope = "login"  # guessing passwords is slow

    @extend_schema(
        tags=[tags.SIGN_IN],
        summary="Exchange email and password for a personal access token",
        request=TokenObtainInputSerializer,
        responses={
            201: TokenIssuedSerializer,
            401: OpenApiResponse(
                ErrorSerializer,
                description="No active user has this email and password (`invalid_credentials`).",
            ),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        values = validated(TokenObtainInputSerializer, request.data)
        issued = services.token_obtain(request=request._request, **values)
        return _issued(issued)


class MeView(APIView):
    @extend_schema(
        tags=[tags.SIGN_IN], summary="The signed-in user with memberships", responses=MeSerializer
    )
    def get(self, request: Request) -> Response:
        user = selectors.user_with_memberships(user=signed_in(request))
        return Response(MeSerializer(user).data)


@paged_list(tags.SIGN_IN, "Your personal access tokens")
class TokenListView(PagedListView[AccessToken]):
    serializer_class = TokenSerializer

    def rows(self) -> QuerySet[AccessToken]:
        return selectors.token_list_for_user(user=signed_in(self.request))

    @extend_schema(
        tags=[tags.SIGN_IN],
        summary="Create a token (the secret is shown once)",
        request=TokenCreateInputSerializer,
        responses={201: TokenIssuedSerializer},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        values = validated(TokenCreateInputSerializer, request.data)
        issued = services.token_create(user=signed_in(request), **values)
        return _issued(issued)


class TokenDetailView(APIView):
    @extend_schema(tags=[tags.SIGN_IN], summary="One of your tokens", responses=TokenSerializer)
    def get(self, request: Request, token_id: UUID) -> Response:
        token = selectors.token_get_for_user(user=signed_in(request), token_id=token_id)
        return Response(TokenSerializer(token).data)

    @extend_schema(tags=[tags.SIGN_IN], summary="Revoke one of your tokens", responses={204: None})
    def delete(self, request: Request, token_id: UUID) -> Response:
        token = selectors.token_get_for_user(user=signed_in(request), token_id=token_id)
        services.token_revoke(token=token, actor=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@paged_list(tags.ORGANIZATIONS, "Organizations you belong to (all, for operators)")
class OrganizationListView(PagedListView[Organization]):
    serializer_class = OrganizationSerializer
    filterset_fields = ["kind", "country"]

    def rows(self) -> QuerySet[Organization]:
        return selectors.organization_list_for_user(user=signed_in(self.request))

    @extend_schema(
        tags=[tags.ORGANIZATIONS],
        summary="Create an organization; you become its admin",
        request=OrganizationCreateInputSerializer,
        responses={201: OrganizationSerializer},
    )
    def post(self, request: Request) -> Response:
        values = validated(OrganizationCreateInputSerializer, request.data)
        organization = services.organization_create(creator=signed_in(request), **values)
        return created(OrganizationSerializer, organization)


class OrganizationDetailView(APIView):
    @extend_schema(
        tags=[tags.ORGANIZATIONS], summary="One organization", responses=OrganizationSerializer
    )
    def get(self, request: Request, organization_id: UUID) -> Response:
        organization = selectors.organization_get_for_user(
            user=signed_in(request), organization_id=organization_id
        )
        return Response(OrganizationSerializer(organization).data)


class OrganizationVerifyView(APIView):
    """Operators only; the service checks it after the lookup, so that a user who may not
    see the organization is told 404 like everywhere else, and one who sees it 403."""

    @extend_schema(
        tags=[tags.OPERATORS],
        summary="Verify an organization (operators); its admins are told by email",
        request=None,
        responses=OrganizationSerializer,
    )
    def post(self, request: Request, organization_id: UUID) -> Response:
        organization = selectors.organization_get_for_user(
            user=signed_in(request), organization_id=organization_id
        )
        organization = services.organization_verify(
            organization=organization, actor=signed_in(request)
        )
        return Response(OrganizationSerializer(organization).data)


def _organization_for_admin(request: Request, organization_id: UUID) -> Organization:
    """Members see the organization (so are told 403); everyone else gets 404."""
    user = signed_in(request)
    organization = selectors.organization_get_for_user(user=user, organization_id=organization_id)
    authz.require_organization_admin(actor=user, organization_id=organization.pk)
    return organization


@paged_list(
    tags.ORGANIZATIONS, "The organization's members (its admins); people join by invitation"
)
class OrganizationMembersView(PagedListView[Membership]):
    serializer_class = MemberSerializer

    def rows(self) -> QuerySet[Membership]:
        organization = _organization_for_admin(self.request, self.kwargs["organization_id"])
        return selectors.membership_list(organization=organization)


class OrganizationMemberView(APIView):
    @extend_schema(
        tags=[tags.ORGANIZATIONS],
        summary="Remove a member (its admins); the last admin stays",
        responses={204: None},
    )
    def delete(self, request: Request, organization_id: UUID, user_id: UUID) -> Response:
        organization = _organization_for_admin(request, organization_id)
        membership = selectors.membership_get(organization=organization, user_id=user_id)
        services.membership_remove(membership=membership, actor=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


@paged_list(tags.OPERATORS, "The scheduler service accounts (operators)")
class SchedulerAccountListView(PagedListView[User]):
    permission_classes = [*DEFAULT_PERMISSIONS, IsOperator]
    serializer_class = SchedulerAccountSerializer

    def rows(self) -> QuerySet[User]:
        return selectors.scheduler_account_list()

    @extend_schema(
        tags=[tags.OPERATORS],
        summary="Create the service account of one usage source (operators)",
        description=(
            "One account per source (one cluster). It has no password and no membership; "
            "it posts usage for its source only, with a token issued by "
            "`POST scheduler-accounts/{id}/tokens/`."
        ),
        request=SchedulerAccountCreateInputSerializer,
        responses={201: SchedulerAccountSerializer},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        values = validated(SchedulerAccountCreateInputSerializer, request.data)
        account = services.scheduler_account_create(actor=signed_in(request), **values)
        return created(SchedulerAccountSerializer, account)


class SchedulerAccountTokenView(APIView):
    permission_classes = [*DEFAULT_PERMISSIONS, IsOperator]

    @extend_schema(
        tags=[tags.OPERATORS],
        summary="Issue a `usage:write` token to a scheduler account (operators; shown once)",
        request=SchedulerTokenIssueInputSerializer,
        responses={201: TokenIssuedSerializer},
    )
    @idempotent
    def post(self, request: Request, account_id: UUID) -> Response:
        account = selectors.scheduler_account_get(account_id=account_id)
        values = validated(SchedulerTokenIssueInputSerializer, request.data)
        issued = services.scheduler_token_issue(account=account, actor=signed_in(request), **values)
        body = {**TokenSerializer(issued.token).data, "token": issued.secret}
        response = Response(body, status=status.HTTP_201_CREATED)
        patch_cache_control(response, no_store=True)  # the secret: never kept by a cache
        return response


@paged_list(tags.ORGANIZATIONS, "The organization's invitations, newest first (its admins)")
class OrganizationInvitationsView(PagedListView[Invitation]):
    serializer_class = InvitationSerializer

    def rows(self) -> QuerySet[Invitation]:
        organization = _organization_for_admin(self.request, self.kwargs["organization_id"])
        return selectors.invitation_list(organization=organization)

    @extend_schema(
        tags=[tags.ORGANIZATIONS],
        summary="Invite an email to join, with a role (its admins); the invitee is mailed",
        description=(
            "The membership exists only once the invitee, signed in with this email, accepts "
            "(`POST /invitations/{id}/accept/`). The answer is the same whether or not the "
            "email has an account. The invitation expires after "
            "`PORTAL_INVITATION_DAYS` (14 by default). A current member's email answers 409 "
            "`already_member`, an email with a pending invitation 409 `already_invited`."
        ),
        request=InvitationCreateInputSerializer,
        responses={201: InvitationSerializer},
    )
    def post(self, request: Request, organization_id: UUID) -> Response:
        organization = _organization_for_admin(request, organization_id)
        values = validated(InvitationCreateInputSerializer, request.data)
        invitation = services.invitation_create(
            organization=organization, actor=signed_in(request), **values
        )
        return created(InvitationSerializer, invitation)


class OrganizationInvitationRevokeView(APIView):
    @extend_schema(
        tags=[tags.ORGANIZATIONS],
        summary="Revoke a pending invitation (its admins)",
        request=None,
        responses=InvitationSerializer,
    )
    def post(self, request: Request, organization_id: UUID, invitation_id: UUID) -> Response:
        organization = _organization_for_admin(request, organization_id)
        invitation = selectors.invitation_get(
            organization=organization, invitation_id=invitation_id
        )
        invitation = services.invitation_revoke(invitation=invitation, actor=signed_in(request))
        return Response(InvitationSerializer(invitation).data)


@paged_list(tags.SIGN_IN, "Invitations to your email that you can still accept or decline")
class InvitationListView(PagedListView[Invitation]):
    serializer_class = ReceivedInvitationSerializer

    def rows(self) -> QuerySet[Invitation]:
        return selectors.invitation_list_for_invitee(user=signed_in(self.request))


class InvitationAcceptView(APIView):
    @extend_schema(
        tags=[tags.SIGN_IN],
        summary="Accept an invitation to your email: you join with the invited role",
        description=(
            "Single use: an invitation answered, revoked (409 `invalid_transition`) or expired "
            "(409 `invitation_expired`) can no longer be accepted."
        ),
        request=None,
        responses=MembershipOrganizationSerializer,
    )
    @idempotent
    def post(self, request: Request, invitation_id: UUID) -> Response:
        user = signed_in(request)
        invitation = selectors.invitation_get_for_invitee(user=user, invitation_id=invitation_id)
        membership = services.invitation_accept(invitation=invitation, actor=user)
        return Response(MembershipOrganizationSerializer(membership).data)


class InvitationDeclineView(APIView):
    @extend_schema(
        tags=[tags.SIGN_IN],
        summary="Decline an invitation to your email",
        request=None,
        responses=ReceivedInvitationSerializer,
    )
    @idempotent
    def post(self, request: Request, invitation_id: UUID) -> Response:
        user = signed_in(request)
        invitation = selectors.invitation_get_for_invitee(user=user, invitation_id=invitation_id)
        invitation = services.invitation_decline(invitation=invitation, actor=user)
        return Response(ReceivedInvitationSerializer(invitation).data)
