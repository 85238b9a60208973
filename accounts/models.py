from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.urls import reverse


class Role(models.TextChoices):
    ADMIN = "admin", "MSP admin"
    OPERATOR = "operator", "MSP operator"
    ACCOUNTING = "accounting", "Accounting"
    CLIENT = "client", "Client"


STAFF_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


class User(AbstractUser):
    """A portal login. MSP staff and accounting have no tenant; a client belongs to exactly one."""

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

    def home_url(self) -> str:
        if self.is_client:
            return reverse("selfservice:home")
        if self.is_accounting:
            return reverse("billing:periods")
        return reverse("tenants:list")
