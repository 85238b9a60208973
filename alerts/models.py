"""Soft quotas, tenant alerts and outgoing webhooks.

PBS has no per-namespace quota, so the portal keeps the policy here (per plan,
overridable per tenant), evaluates it after every metering sample, and when
the action is ``stop-writes`` removes the tenant's write rights on its
namespace while keeping Datastore.Read so restores keep working.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

GIB = 2**30


class QuotaAction(models.TextChoices):
    BILL_OVERAGE = "bill-overage", "Bill overage only"
    STOP_WRITES = "stop-writes", "Stop writes (restores keep working)"


class QuotaPolicyFields(models.Model):
    """The quota settings shared by plans and per-tenant overrides."""

    soft_limit_gib = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="Usage above this starts the grace period. Empty: no soft limit.",
    )
    hard_limit_gib = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="Usage at or above this is enforced at once, grace or not. Empty: no hard limit.",
    )
    warning_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Warn at this percentage of the soft limit."
    )
    grace_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days between passing the soft limit and enforcement."
    )
    action = models.CharField(max_length=16, choices=QuotaAction.choices, blank=True, default="")

    class Meta:
        abstract = True


class PlanQuota(QuotaPolicyFields):
    """Quota settings of a plan, measured on the plan's metric. Empty fields use the defaults
    (80 % warning, 7 grace days, bill-overage)."""

    plan = models.OneToOneField("plans.Plan", on_delete=models.CASCADE, related_name="quota")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quota of plan {self.plan_id}"


class TenantQuota(QuotaPolicyFields):
    """Per-tenant override of the plan's quota: every field set here wins over the plan's."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="quota_override")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"quota override of tenant {self.tenant_id}"


class QuotaState(models.Model):
    """Where a tenant stands against its quota, and whether its write rights are removed on PBS.

    ``state`` is what the policy says; ``writes_blocked`` is what the portal has done on PBS
    (the two differ only while a PBS change is pending or failed, see ``pbs_error``)."""

    class State(models.TextChoices):
        OK = "ok"
        WARNING = "warning"
        OVER = "over", "Over (grace running)"
        ENFORCED = "enforced"

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="quota_state")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OK, db_index=True)
    metric = models.CharField(max_length=16, blank=True, default="")
    usage_bytes = models.BigIntegerField(null=True, blank=True)
    soft_limit_bytes = models.BigIntegerField(null=True, blank=True)
    hard_limit_bytes = models.BigIntegerField(null=True, blank=True)
    warning_bytes = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=16, choices=QuotaAction.choices, default=QuotaAction.BILL_OVERAGE)
    over_since = models.DateTimeField(null=True, blank=True)
    grace_ends_at = models.DateTimeField(null=True, blank=True)
    enforced_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    last_sample_id = models.BigIntegerField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # Staff decisions.
    exempt = models.BooleanField(default=False)
    exempt_reason = models.TextField(blank=True, default="")
    exempt_at = models.DateTimeField(null=True, blank=True)
    exempt_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grace_extended_at = models.DateTimeField(null=True, blank=True)
    grace_extended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    grace_extension_reason = models.TextField(blank=True, default="")
    # What is applied on PBS.
    writes_blocked = models.BooleanField(default=False)
    writes_changed_at = models.DateTimeField(null=True, blank=True)
    pbs_privileges = models.JSONField(
        default=dict, blank=True,
        help_text="From /access/permissions after the last change: {auth_id: {priv: propagate}}.",
    )
    pbs_verified_at = models.DateTimeField(null=True, blank=True)
    pbs_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["writes_blocked"])]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.state}"

    @property
    def wants_writes_blocked(self) -> bool:
        return (
            self.state == self.State.ENFORCED
            and self.action == QuotaAction.STOP_WRITES
            and not self.exempt
        )

    @property
    def usage_percent_of_soft(self) -> int | None:
        if not self.soft_limit_bytes or self.usage_bytes is None:
            return None
        return int(self.usage_bytes * 100 // self.soft_limit_bytes)


class QuotaTransition(models.Model):
    """One change of a tenant's quota state, for the history shown to staff."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="quota_transitions")
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    usage_bytes = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True, default="")
    sample_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.from_state} -> {self.to_state}"


class Alert(models.Model):
    """One occurrence of a condition for a tenant, open until it recovers.

    A condition is (tenant, kind, key); at most one alert per condition is open. Notices go out
    at most once a day per condition; the recovery notice goes out once, and only for an alert
    whose notice went out."""

    class Kind(models.TextChoices):
        QUOTA_WARNING = "quota_warning", "Quota warning"
        QUOTA_OVER = "quota_over", "Over quota (grace running)"
        QUOTA_ENFORCED = "quota_enforced", "Quota enforced"
        BACKUP_STALE = "backup_stale", "No recent backup"
        VERIFY_FAILED = "verify_failed", "Verification failed"
        OFFSITE_STALE = "offsite_stale", "Offsite copy stale"

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    class Resolution(models.TextChoices):
        RECOVERED = "recovered"
        SUPERSEDED = "superseded", "Superseded by another alert"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    key = models.CharField(
        max_length=128, blank=True, default="", help_text="Tells conditions of one kind apart, e.g. a group."
    )
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notify_count = models.PositiveIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=16, choices=Resolution.choices, blank=True, default="")
    recovery_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "key"],
                condition=models.Q(status="open"),
                name="one_open_alert_per_condition",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "status"]),
            models.Index(fields=["tenant", "kind", "key", "-last_notified_at"]),
            models.Index(fields=["status", "-opened_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.kind}{':' + self.key if self.key else ''} ({self.status})"


class TenantAlertSettings(models.Model):
    """Per-tenant alert settings: the backup-age threshold and an optional outgoing webhook.
    The webhook secret is Fernet-encrypted (core.crypto) and never shown again."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="alert_settings")
    backup_max_age_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Alert when the newest backup is older. Empty: the default."
    )
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    webhook_secret_enc = models.TextField(blank=True, default="")
    webhook_enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"alert settings of tenant {self.tenant_id}"


class BackupHealth(models.Model):
    """What the hourly check last saw of a tenant's backups on PBS (newest snapshot time and
    groups whose newest verified snapshot failed verification)."""

    tenant = models.OneToOneField("tenants.Tenant", on_delete=models.CASCADE, related_name="backup_health")
    newest_backup_at = models.DateTimeField(null=True, blank=True)
    group_count = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(null=True, blank=True)
    failed_verifications = models.JSONField(
        default=list, blank=True, help_text="Groups whose newest verified snapshot failed."
    )
    verify_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"backup health of tenant {self.tenant_id}"


class WebhookDelivery(models.Model):
    """One webhook message and its delivery attempts. The body is fixed at creation so every
    retry sends (and signs) the same bytes; the receiver de-duplicates on ``uuid``."""

    class Target(models.TextChoices):
        TENANT = "tenant", "Tenant webhook"
        GLOBAL = "global", "Global webhook"

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    target = models.CharField(max_length=8, choices=Target.choices)
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=32)
    body = models.TextField(help_text="The exact JSON bytes sent (UTF-8).")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.event} {self.uuid} ({self.status}, {self.attempts} attempts)"
