"""The admin of people, organizations and tokens. Verification and revocation go through
the services; the audit trail is read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import AccessToken, AuditEvent, Membership, Organization, User


class PortalUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class PortalUserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class MembershipInline(admin.TabularInline[Membership, Any]):
    """Memberships are shown, not edited here: members are added through the API."""

    model = Membership
    extra = 0
    can_delete = False
    fields = ("organization", "user", "role", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ("email",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("full_name",)}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "usable_password", "password1",
                                                   "password2")}),
    )  # fmt: skip
    inlines = (MembershipInline,)


@admin.action(description="Verify the selected organizations (their admins are told)")
def verify_selected(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Organization]
) -> None:
    assert isinstance(request.user, User)
    done = 0
    for organization in queryset.filter(verified_at__isnull=True):
        services.organization_verify(organization=organization, actor=request.user)
        done += 1
    model_admin.message_user(request, f"{done} organization(s) verified.", messages.SUCCESS)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ("name", "kind", "country", "registry_number", "is_verified", "created_at")
    list_filter = ("kind", "country", ("verified_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "registry_number")
    actions = (verify_selected,)
    inlines = (MembershipInline,)
    readonly_fields = ("verified_at", "verified_by", "created_at")

    @admin.display(boolean=True, description="verified")
    def is_verified(self, organization: Organization) -> bool:
        return organization.is_verified

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Organizations are made through the API, so that their creator becomes their admin.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The changelist takes the verify action; the page of one organization is read-only.
        return obj is None and bool(request.user.is_staff)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin[Membership]):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "organization__name")
    list_select_related = ("user", "organization")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Revoke the selected tokens")
def revoke_selected(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[AccessToken]
) -> None:
    assert isinstance(request.user, User)
    for token in queryset.filter(revoked_at__isnull=True):
        services.token_revoke(token=token, actor=request.user)


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin[AccessToken]):
    """Tokens are listed and revoked here; their secrets were never stored."""

    list_display = ("name", "user", "prefix", "scope", "created_at", "expires_at", "last_used_at",
                    "revoked_at")  # fmt: skip
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("name", "prefix", "user__email")
    list_select_related = ("user",)
    exclude = ("digest",)
    actions = (revoke_selected,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and bool(request.user.is_staff)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """The audit trail: append-only, so read-only here."""

    list_display = ("created_at", "verb", "target_type", "target_repr", "actor")
    list_filter = ("verb", "target_type")
    search_fields = ("target_repr", "verb", "actor__email")
    date_hierarchy = "created_at"
    list_select_related = ("actor", "target_type")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
