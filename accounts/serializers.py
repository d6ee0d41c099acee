from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django_countries.serializer_fields import CountryField
from rest_framework import serializers

from accounts.models import (
    AccessToken,
    Invitation,
    InvitationStatus,
    Membership,
    MembershipRole,
    Organization,
    OrganizationKind,
    TokenScope,
    User,
    validate_scheduler_source,
)
from accounts.validators import validate_norwegian_organization_number
from portal.serializers import PortalCountryField, StrictSerializer


def _expiry_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=settings.PORTAL_TOKEN_MAX_DAYS,
        help_text=f"Days until the token expires (default {settings.PORTAL_TOKEN_DEFAULT_DAYS}).",
    )


_SCOPE_HELP = (
    "`full` for people. `usage:write` is refused here (`scope_not_allowed`): only scheduler "
    "service accounts hold it, and an operator issues their tokens."
)


class TokenCreateInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(
        choices=TokenScope.choices, default=TokenScope.FULL, help_text=_SCOPE_HELP
    )
    expires_in_days = _expiry_field()


class TokenObtainInputSerializer(StrictSerializer):
    email = serializers.EmailField()
    password = serializers.CharField(
        trim_whitespace=False, max_length=1024, style={"input_type": "password"}
    )
    name = serializers.CharField(max_length=100, default="api")
    scope = serializers.ChoiceField(
        choices=TokenScope.choices, default=TokenScope.FULL, help_text=_SCOPE_HELP
    )
    expires_in_days = _expiry_field()


class SchedulerAccountSerializer(serializers.ModelSerializer):
    # DRF pops declared fields from the class, so this does not shadow Field.source.
    source = serializers.CharField(source="scheduler_source", read_only=True)  # type: ignore[assignment]
    name = serializers.CharField(source="full_name", read_only=True)
    created_at = serializers.DateTimeField(source="date_joined", read_only=True)

    class Meta:
        model = User
        fields = ["id", "source", "name", "email", "is_active", "created_at"]


class SchedulerAccountCreateInputSerializer(StrictSerializer):
    source = serializers.CharField(  # type: ignore[assignment]
        max_length=64,
        validators=[validate_scheduler_source],
        help_text="The usage source (one cluster) the account reports for, e.g. `slurm-narvik`.",
    )
    name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)


class SchedulerTokenIssueInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, default="scheduler")
    expires_in_days = _expiry_field()


class TokenSerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = AccessToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]


class TokenIssuedSerializer(TokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The secret. Shown once: store it now, it cannot be read again."
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]


class OrganizationSerializer(serializers.ModelSerializer):
    # Null, never "", for a row stored without a country before countries were checked.
    country = CountryField(country_dict=False, allow_null=True)
    is_verified = serializers.BooleanField(read_only=True)

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "kind",
            "country",
            "registry_number",
            "is_verified",
            "verified_at",
            "created_at",
        ]


class OrganizationCreateInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=OrganizationKind.choices)
    country = PortalCountryField(help_text="ISO 3166-1 alpha-2, e.g. `NO`.")
    registry_number = serializers.CharField(
        max_length=32,
        required=False,
        default="",
        allow_blank=True,
        help_text="Required for Norwegian organizations: the 9-digit organization number.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        number = attrs.get("registry_number", "").replace(" ", "")
        attrs["registry_number"] = number
        if attrs["country"] == "NO":
            if not number:
                raise serializers.ValidationError(
                    {"registry_number": "Norwegian organizations give their organization number."},
                    code="required",
                )
            try:
                validate_norwegian_organization_number(number)
            except DjangoValidationError as error:
                raise serializers.ValidationError(
                    {"registry_number": error.messages}, code="invalid_registry_number"
                ) from error
        if (
            number
            and Organization.objects.filter(
                country=attrs["country"], registry_number=number
            ).exists()
        ):
            raise serializers.ValidationError(
                {"registry_number": "An organization with this registry number exists."},
                code="unique",
            )
        return attrs


class MembershipOrganizationSerializer(serializers.ModelSerializer):
    organization = OrganizationSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["organization", "role"]


class MeSerializer(serializers.ModelSerializer):
    is_operator = serializers.BooleanField(source="is_staff", read_only=True)
    memberships = MembershipOrganizationSerializer(many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_operator", "memberships"]


class MemberSerializer(serializers.ModelSerializer):
    user = serializers.UUIDField(source="user_id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    joined_at = serializers.DateTimeField(source="created_at", read_only=True)

    class Meta:
        model = Membership
        fields = ["user", "email", "full_name", "role", "joined_at"]


class InvitationCreateInputSerializer(StrictSerializer):
    email = serializers.EmailField(help_text="Whom to invite; matched in any case.")
    role = serializers.ChoiceField(choices=MembershipRole.choices, default=MembershipRole.MEMBER)


class InvitationSerializer(serializers.ModelSerializer):
    """An invitation as the organization's admins read it."""

    status = serializers.ChoiceField(
        source="current_status",
        choices=InvitationStatus.choices,
        read_only=True,
        help_text="`pending` until answered, revoked or past `expires_at` (then `expired`).",
    )
    invited_by = serializers.EmailField(
        source="invited_by.email", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "responded_at",
        ]


class ReceivedInvitationSerializer(serializers.ModelSerializer):
    """An invitation as its invitee reads it."""

    organization = OrganizationSerializer(read_only=True)
    status = serializers.ChoiceField(
        source="current_status", choices=InvitationStatus.choices, read_only=True
    )

    class Meta:
        model = Invitation
        fields = ["id", "organization", "role", "status", "created_at", "expires_at"]
