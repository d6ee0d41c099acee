"""People, organizations, roles, personal access tokens and the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_countries.fields import CountryField


class UserManager(BaseUserManager["User"]):
    """Users log in with their email; the manager only normalises and hashes."""

    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("Users must have an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


SCHEDULER_SOURCE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
validate_scheduler_source = RegexValidator(
    SCHEDULER_SOURCE_PATTERN,
    "A source is lowercase letters, digits, dots, dashes and underscores, e.g. `slurm-narvik`.",
    code="invalid_source",
)


class User(AbstractBaseUser, PermissionsMixin):
    """A person, or a scheduler service account.

    `is_staff` makes an operator: the admin, inventory, verification. A user with a
    `scheduler_source` is the service account of one cluster: no password, no membership,
    never staff; the only kind of user that holds `usage:write` tokens.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Operators run the site: admin, inventory, verification."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    language = models.CharField(
        max_length=8,
        choices=settings.LANGUAGES,
        blank=True,
        default="",
        help_text=(
            "The language of the pages, emails and API messages for this person; empty "
            "follows their browser (Accept-Language)."
        ),
    )
    scheduler_username = models.CharField(
        max_length=32,
        blank=True,
        default="",
        validators=[
            RegexValidator(
                r"^[a-z_][a-z0-9_.-]{0,31}$",
                "A Unix user name: lowercase letters, digits, `_`, `.` and `-`.",
            )
        ],
        help_text=(
            "The person's user name on the cluster, set by operators. With it, they become a "
            "user of their organizations' scheduler accounts."
        ),
    )
    scheduler_source = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        validators=[validate_scheduler_source],
        help_text="Set on a scheduler service account: the one usage source it reports for.",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []  # type: ignore[misc]  # the stubs declare a ClassVar

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                fields=["scheduler_username"],
                condition=~Q(scheduler_username=""),
                name="user_unique_scheduler_username",
            ),
            models.CheckConstraint(
                condition=Q(scheduler_source__isnull=True) | Q(is_staff=False, is_superuser=False),
                name="scheduler_account_not_staff",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def is_scheduler(self) -> bool:
        return self.scheduler_source is not None


class SchedulerAccountManager(UserManager):
    use_in_migrations = False

    def get_queryset(self) -> models.QuerySet[User]:
        return super().get_queryset().filter(scheduler_source__isnull=False)


class SchedulerAccount(User):
    """The scheduler service accounts, for the admin: one per usage source (cluster)."""

    objects = SchedulerAccountManager()  # type: ignore[misc]

    class Meta:
        proxy = True
        ordering = ["scheduler_source"]
        verbose_name = "scheduler service account"


class OidcIdentity(models.Model):
    """The subject (`sub`) at the OpenID Connect provider that signs a user in. Once stored,
    sign-in finds the user by it alone; a user has at most one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(
        "accounts.User", on_delete=models.CASCADE, related_name="oidc_identity"
    )
    subject = models.CharField(max_length=255, unique=True)
    linked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "OpenID Connect identity"

    def __str__(self) -> str:
        return f"{self.subject} → {self.user_id}"


class OrganizationKind(models.TextChoices):
    UNIVERSITY = "university", "University"
    RESEARCH_INSTITUTE = "research_institute", "Research institute"
    STARTUP = "startup", "Startup"
    COMPANY = "company", "Company"
    PUBLIC_SECTOR = "public_sector", "Public sector"


class Organization(models.Model):
    """An applicant body. Only verified organizations can be granted GPU-hours."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=OrganizationKind.choices)
    country = CountryField()
    registry_number = models.CharField(
        max_length=32,
        blank=True,
        help_text="The national registry number; for Norway the 9-digit organization number.",
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        "accounts.User", through="accounts.Membership", related_name="organizations"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "registry_number"],
                condition=~Q(registry_number=""),
                name="organization_unique_registry_number",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class MembershipRole(models.TextChoices):
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(
        max_length=16, choices=MembershipRole.choices, default=MembershipRole.MEMBER
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organization__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class InvitationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    DECLINED = "declined", "Declined"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"


class Invitation(models.Model):
    """An organization's admin invites an email with a role; the person signed in with that
    email accepts (the membership is made then) or declines. Single use: it leaves `pending`
    once. A pending one past `expires_at` reads as expired and can no longer be answered."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField(help_text="Stored lowercased; matched in any case.")
    role = models.CharField(
        max_length=16, choices=MembershipRole.choices, default=MembershipRole.MEMBER
    )
    status = models.CharField(
        max_length=16, choices=InvitationStatus.choices, default=InvitationStatus.PENDING
    )
    invited_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(status="pending"),
                name="invitation_one_pending_per_email",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="invitation_expires_after_creation",
            ),
        ]
        indexes = [models.Index(fields=["email", "status"])]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization.name} ({self.role})"

    @property
    def current_status(self) -> str:
        """The status as people read it: a pending invitation past its expiry is expired."""
        if self.status == InvitationStatus.PENDING and self.expires_at <= timezone.now():
            return InvitationStatus.EXPIRED
        return self.status


class TokenScope(models.TextChoices):
    FULL = "full", "Full access as the user"
    USAGE_WRITE = "usage:write", "Post usage records and read allocation limits (schedulers)"


class AccessToken(models.Model):
    """A personal access token. Only the SHA-256 digest of the secret is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to recognise it.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=16, choices=TokenScope.choices, default=TokenScope.FULL)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="token_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class IdempotencyKey(models.Model):
    """The answer to a write sent with an `Idempotency-Key`, kept so that a retry with the
    same key replays it instead of acting again (portal/idempotency.py).

    Scoped per user: the same key from two users names two writes. Written in the same
    transaction as the write's effect, so that a write that did not commit leaves no key.
    Neither the key nor the answer is stored in the clear: `key_digest` is its SHA-256, and
    `answer` is encrypted with a key derived from the Idempotency-Key and SECRET_KEY (a new
    token's secret is part of an answer).
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    key_digest = models.CharField(max_length=64)
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the method, path and body of the first request."
    )
    status_code = models.PositiveSmallIntegerField()
    answer = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key_digest"], name="idempotency_key_once_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key_digest[:12]}… ({self.status_code})"
