"""The admin of people, organizations, memberships, tokens and the audit trail.

Users are accounts, not domain rows: operators create them and set their passwords with the
standard forms. Everything else changes only through the services: organizations are
verified and tokens revoked by actions that call them; memberships, tokens and the audit
trail are read-only here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts import services
from accounts.authz import signed_in
from accounts.models import (
    AccessToken,
    Invitation,
    InvitationStatus,
    Membership,
    OidcIdentity,
    Organization,
    SchedulerAccount,
    User,
    validate_scheduler_source,
)
from portal.admin import (
    ActionReport,
    ActionsOnlyAdmin,
    ConditionsFilter,
    ReadOnlyAdmin,
    ReadOnlyInline,
)
from portal.errors import DomainError


class _LowercaseEmailMixin:
    """Emails are stored lowercased, as `UserManager.create_user` stores them, so that one
    address typed in another case can never make a second user."""

    cleaned_data: dict[str, Any]

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()


class PortalUserChangeForm(_LowercaseEmailMixin, UserChangeForm[User]):
    class Meta:
        model = User
        fields = "__all__"  # the fieldsets choose what is shown


class PortalUserCreationForm(_LowercaseEmailMixin, AdminUserCreationForm[User]):
    class Meta:
        model = User
        fields = ("email", "full_name")


class MembershipInline(ReadOnlyInline):
    """Memberships are shown, not edited: people join by accepting an invitation and are
    removed through the API (`membership_remove`, which keeps every organization an admin)."""

    model = Membership
    fields = ("organization", "user", "role", "created_at")


class InvitationInline(ReadOnlyInline):
    model = Invitation
    fields = ("email", "role", "status", "invited_by", "created_at", "expires_at")


class OidcIdentityInline(ReadOnlyInline):
    """The provider's subject that signs the user in (accounts/oidc.py), shown, not edited."""

    model = OidcIdentity
    fields = ("subject", "linked_at")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_superuser", "is_active", "date_joined",
                    "last_login")  # fmt: skip
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("email", "full_name", "scheduler_username")
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("full_name", "scheduler_username")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "usable_password", "password1", "password2"),
            },
        ),
    )
    inlines = (MembershipInline, OidcIdentityInline)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        # A user being added has no memberships yet.
        return self.inlines if obj is not None else ()

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # Scheduler service accounts have a page of their own (no password, no membership).
        return super().get_queryset(request).filter(scheduler_source__isnull=True)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a user would drop their memberships (perhaps an organization's last admin)
        # and tokens with no audit trail, and is refused once they applied: deactivate instead.
        return False

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if change and {"scheduler_username", "is_active"} & set(form.changed_data):
                # Their organizations' scheduler accounts gain or lose them.
                for organization_id in obj.memberships.values_list("organization_id", flat=True):
                    services.organization_scheduler_sync(organization_id)


class SchedulerAccountCreationForm(forms.ModelForm[SchedulerAccount]):
    source = forms.CharField(
        max_length=64,
        validators=[validate_scheduler_source],
        help_text="The usage source (one cluster) this account reports for, e.g. slurm-narvik.",
    )

    class Meta:
        model = SchedulerAccount
        fields = ("full_name",)

    def clean_source(self) -> str:
        source = str(self.cleaned_data["source"])
        if User.objects.filter(Q(scheduler_source=source)).exists():
            raise forms.ValidationError("A scheduler service account reports for this source.")
        return source


@admin.action(
    description="Issue a usage:write token to each selected account", permissions=["change"]
)
def issue_scheduler_tokens(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[SchedulerAccount]
) -> TemplateResponse | None:
    """Issue a token to each active account through the service and show the secrets once,
    on a page of their own (never in a message, which would keep them in the session)."""
    actor = signed_in(request)
    issued = []
    for account in queryset.filter(is_active=True).order_by("scheduler_source"):
        try:
            token = services.scheduler_token_issue(account=account, actor=actor, name="scheduler")
        except DomainError as error:
            model_admin.message_user(request, f"{account}: {error.message}", messages.ERROR)
        else:
            issued.append((account, token))
    if not issued:
        model_admin.message_user(request, "No active account selected.", messages.WARNING)
        return None
    # The admin's views are never cached (`never_cache`), so neither is this page.
    return TemplateResponse(
        request,
        "admin/accounts/scheduler_tokens_issued.html",
        {**model_admin.admin_site.each_context(request), "issued": issued},
    )


@admin.register(SchedulerAccount)
class SchedulerAccountAdmin(admin.ModelAdmin[SchedulerAccount]):
    """Scheduler service accounts: one per usage source (cluster), created here through the
    service. They have no password and no membership; the action issues their usage:write
    tokens. An account is switched off by clearing `active`, which stops its tokens."""

    list_display = ("scheduler_source", "full_name", "email", "is_active", "date_joined")
    list_filter = ("is_active",)
    search_fields = ("scheduler_source", "full_name")
    ordering = ("scheduler_source",)
    actions = (issue_scheduler_tokens,)
    fields = ("scheduler_source", "email", "full_name", "is_active", "date_joined")
    readonly_fields = ("scheduler_source", "email", "date_joined")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False,
                 **kwargs: Any) -> Any:  # fmt: skip
        if obj is None:
            kwargs["form"] = SchedulerAccountCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("source", "full_name") if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: SchedulerAccount, form: Any,
                   change: bool) -> None:  # fmt: skip
        if change:
            services.scheduler_account_update(
                account=obj, actor=signed_in(request), name=obj.full_name, is_active=obj.is_active
            )
            return
        account = services.scheduler_account_create(
            source=form.cleaned_data["source"],
            name=form.cleaned_data.get("full_name", ""),
            actor=signed_in(request),
        )
        obj.pk = account.pk
        obj.email = account.email
        obj.scheduler_source = account.scheduler_source
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Its usage records and audit trail name it: switch it off instead.
        return False


class VerifiedFilter(ConditionsFilter):
    title = "verified"
    parameter_name = "verified"

    def conditions(self) -> dict[str, tuple[str, Q]]:
        return {
            "yes": ("Verified", Q(verified_at__isnull=False)),
            "no": ("Not verified", Q(verified_at__isnull=True)),
        }


@admin.action(description="Verify selected organizations", permissions=["change"])
def verify_selected(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Organization]
) -> None:
    """Verify each unverified organization through the service (audited, its admins told)."""
    actor = signed_in(request)
    pending = list(queryset.filter(verified_at__isnull=True))
    already = queryset.count() - len(pending)
    with ActionReport(model_admin, request, "organization(s) verified") as report:
        for organization in pending:
            with report.row(organization):
                services.organization_verify(organization=organization, actor=actor)
    if already:
        model_admin.message_user(
            request, f"{already} organization(s) were already verified.", messages.INFO
        )


@admin.register(Organization)
class OrganizationAdmin(ActionsOnlyAdmin):
    """Organizations are made through the API (their creator becomes their admin) and
    verified here by the action; the page of one organization is read-only."""

    list_display = ("name", "kind", "country", "registry_number", "is_verified", "verified_at",
                    "member_count", "created_at")  # fmt: skip
    list_filter = (VerifiedFilter, "kind", "country")
    search_fields = ("name", "registry_number")
    date_hierarchy = "created_at"
    actions = (verify_selected,)
    inlines = (MembershipInline, InvitationInline)
    fields = ("name", "kind", "country", "registry_number", "verified_at", "verified_by",
              "created_at")  # fmt: skip
    readonly_fields = ("verified_at", "verified_by", "created_at")
    list_select_related = ("verified_by",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(boolean=True, description="verified", ordering="verified_at")
    def is_verified(self, organization: Organization) -> bool:
        return organization.is_verified

    @admin.display(description="members", ordering="member_count")
    def member_count(self, organization: Organization) -> int:
        return int(organization.member_count)  # type: ignore[attr-defined]


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    """Read-only: people join by accepting an invitation, and `membership_remove` removes
    them, through the API."""

    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization__kind")
    search_fields = ("user__email", "user__full_name", "organization__name")
    list_select_related = ("user", "organization")


@admin.action(description="Revoke selected pending invitations", permissions=["change"])
def revoke_invitations(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Invitation]
) -> None:
    """Revoke each pending invitation through the service (audited); others are left."""
    actor = signed_in(request)
    pending = queryset.filter(status=InvitationStatus.PENDING).select_related("organization")
    with ActionReport(model_admin, request, "invitation(s) revoked", report_none=True) as report:
        for invitation in pending:
            with report.row(invitation):
                services.invitation_revoke(invitation=invitation, actor=actor)


@admin.register(Invitation)
class InvitationAdmin(ActionsOnlyAdmin):
    """Invitations to join organizations, made by their admins through the API; they are
    answered by the invitees there. Pending ones can be revoked here."""

    list_display = ("email", "organization", "role", "shown_status", "invited_by", "created_at",
                    "expires_at", "responded_at")  # fmt: skip
    list_filter = ("status", "role")
    search_fields = ("email", "organization__name", "invited_by__email")
    list_select_related = ("organization", "invited_by")
    date_hierarchy = "created_at"
    fields = ("organization", "email", "role", "status", "invited_by", "accepted_by",
              "created_at", "expires_at", "responded_at")  # fmt: skip
    readonly_fields = fields
    actions = (revoke_invitations,)

    @admin.display(description="status", ordering="status")
    def shown_status(self, invitation: Invitation) -> str:
        return invitation.current_status


class TokenStatusFilter(ConditionsFilter):
    title = "status"
    parameter_name = "status"

    def conditions(self) -> dict[str, tuple[str, Q]]:
        now = timezone.now()
        return {
            "active": ("Active", Q(revoked_at__isnull=True, expires_at__gt=now)),
            "expired": ("Expired", Q(revoked_at__isnull=True, expires_at__lte=now)),
            "revoked": ("Revoked", Q(revoked_at__isnull=False)),
        }


@admin.action(description="Revoke selected tokens", permissions=["change"])
def revoke_selected(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[AccessToken]
) -> None:
    """Revoke each token still unrevoked through the service (audited)."""
    actor = signed_in(request)
    with ActionReport(model_admin, request, "token(s) revoked", report_none=True) as report:
        for token in queryset.filter(revoked_at__isnull=True):
            with report.row(token):
                services.token_revoke(token=token, actor=actor)


@admin.register(AccessToken)
class AccessTokenAdmin(ActionsOnlyAdmin):
    """Tokens are listed and revoked here. Their secrets were never stored, and their digests
    are never shown: only the prefix, to recognise one."""

    list_display = ("name", "user", "prefix", "scope", "status", "created_at", "expires_at",
                    "last_used_at", "revoked_at")  # fmt: skip
    list_filter = (TokenStatusFilter, "scope")
    search_fields = ("name", "prefix", "user__email")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    fields = ("user", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at",
              "revoked_at")  # fmt: skip
    readonly_fields = fields
    actions = (revoke_selected,)

    @admin.display(description="status")
    def status(self, token: AccessToken) -> str:
        if token.revoked_at is not None:
            return "revoked"
        return "active" if token.is_active else "expired"
