from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Role(models.TextChoices):
    ADMIN = "admin", "MSP admin"
    OPERATOR = "operator", "MSP operator"
    ACCOUNTING = "accounting", "Accounting"
    CLIENT = "client", "Client"


STAFF_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


class UserManager(DjangoUserManager["User"]):
    """``createsuperuser`` makes an MSP admin (a superuser with the default client role and
    no tenant would break the client_has_tenant constraint)."""

    def create_superuser(self, username: str, email: str | None = None, password: str | None = None,
                         **extra_fields: object) -> User:
        extra_fields.setdefault("role", Role.ADMIN)
        extra_fields.setdefault("tenant", None)
        return super().create_superuser(username, email, password, **extra_fields)


class User(AbstractUser):
    """A portal login. MSP staff and accounting have no tenant; a client belongs to exactly one."""

    objects = UserManager()

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CLIENT)
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="client_users",
        help_text="Set for client users only: the one tenant they may see.",
    )
    is_tenant_admin = models.BooleanField(
        default=False, help_text="A client user who may invite and remove the tenant's own users."
    )
    totp_secret_enc = models.TextField(blank=True, default="", help_text="Fernet-encrypted TOTP seed.")
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    # The 30-second step of the last accepted code: a code is never accepted twice.
    totp_last_step = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="client_has_tenant",
                condition=(
                    models.Q(role="client", tenant__isnull=False)
                    | (~models.Q(role="client") & models.Q(tenant__isnull=True))
                ),
            )
        ]

    @property
    def is_msp_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_msp_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_accounting(self) -> bool:
        return self.role == Role.ACCOUNTING

    @property
    def is_client(self) -> bool:
        return self.role == Role.CLIENT

    @property
    def has_totp(self) -> bool:
        return bool(self.totp_confirmed_at and self.totp_secret_enc)

    def home_url(self) -> str:
        if self.is_client:
            return reverse("selfservice:home")
        if self.is_accounting:
            return reverse("billing:periods")
        return reverse("tenants:list")


class Invitation(models.Model):
    """A one-time sign-up link for a client user of one tenant.

    Only the SHA-256 of the link's token is stored; the token itself exists in the e-mail
    alone. An invitation is usable once, until ``expires_at``, unless revoked.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    token_hash = models.CharField(max_length=64, unique=True, help_text="sha256 hex of the link token.")
    is_tenant_admin = models.BooleanField(default=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"invitation {self.pk} for {self.email}"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class LoginThrottle(models.Model):
    """Failed sign-in counter for one account name or one client IP.

    ``failures`` counts failures since ``window_started_at``; reaching the limit sets
    ``locked_until``. Kept in the database (not the cache) so a lockout survives a cache
    flush and holds across every web worker.
    """

    class Scope(models.TextChoices):
        ACCOUNT = "account"
        IP = "ip"

    scope = models.CharField(max_length=8, choices=Scope.choices)
    key = models.CharField(max_length=150, help_text="Lower-cased username, or the IP address.")
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(default=timezone.now)
    locked_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="login_throttle_unique")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} failures={self.failures}"


class ApiKey(models.Model):
    """A named, expiring, revocable API key a user made for themself. Only the SHA-256 digest
    of the key is kept; the key is shown once, at creation. A key acts as its user: a staff
    user's key has that user's staff role, a client's key sees only the client's tenant."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=64)
    prefix = models.CharField(max_length=16, unique=True, help_text="The key's public start, to find it.")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the whole key, hex.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
