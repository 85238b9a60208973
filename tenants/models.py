"""Tenants, the PBS hosts they live on, and every PBS object the portal made for them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PbsHost(models.Model):
    """A PBS server the portal manages, reached with an automation token (and optionally a
    read-only metering token). Secrets are Fernet-encrypted (core.crypto)."""

    name = models.SlugField(max_length=64, unique=True)
    url = models.URLField(help_text="Base URL, e.g. https://pbs1.example.net:8007")
    fingerprint = models.CharField(
        max_length=95, blank=True, default="", help_text="Pinned SHA-256 leaf fingerprint (aa:bb:..)."
    )
    ca_pem = models.TextField(blank=True, default="", help_text="CA bundle to verify instead of a pin.")
    public_address = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="host[:port] customers connect to, when it differs from the URL the portal uses.",
    )
    token_id = models.CharField(max_length=64, help_text="Automation token, user@realm!name.")
    token_secret_enc = models.TextField()
    metering_token_id = models.CharField(max_length=64, blank=True, default="")
    metering_secret_enc = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    max_connections = models.PositiveSmallIntegerField(default=8)
    # Last health check.
    last_check_at = models.DateTimeField(null=True, blank=True)
    reachable = models.BooleanField(null=True, blank=True)
    fingerprint_ok = models.BooleanField(null=True, blank=True)
    pbs_version = models.CharField(max_length=32, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    supports_regenerate = models.BooleanField(
        null=True, blank=True, help_text="PUT token regenerate=1 exists (PBS >= 3.3.7)."
    )
    permission_warnings = models.JSONField(
        default=list, blank=True, help_text="Privileges the automation token lacks (last check)."
    )
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    drift_findings = models.JSONField(
        default=list, blank=True, help_text="Last host-wide drift check: [{kind, tenant, detail}]."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Datastore(models.Model):
    """A datastore on a PBS host that tenants can be placed on."""

    host = models.ForeignKey(PbsHost, on_delete=models.CASCADE, related_name="datastores")
    name = models.CharField(max_length=32)
    enabled = models.BooleanField(default=True)
    placement_weight = models.PositiveSmallIntegerField(default=1)
    total_bytes = models.BigIntegerField(null=True, blank=True)
    used_bytes = models.BigIntegerField(null=True, blank=True)
    avail_bytes = models.BigIntegerField(null=True, blank=True)
    # From the last GC status: index-data-bytes and disk-bytes (for the physical estimate).
    gc_index_data_bytes = models.BigIntegerField(null=True, blank=True)
    gc_disk_bytes = models.BigIntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["host__name", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="datastore_unique_per_host")]

    def __str__(self) -> str:
        return f"{self.host.name}/{self.name}"


class RetentionPolicy(models.Model):
    """Keep-* values and schedule for a tenant's prune job. Null keep values are not set on PBS."""

    keep_last = models.PositiveSmallIntegerField(null=True, blank=True)
    keep_hourly = models.PositiveSmallIntegerField(null=True, blank=True)
    keep_daily = models.PositiveSmallIntegerField(null=True, blank=True, default=14)
    keep_weekly = models.PositiveSmallIntegerField(null=True, blank=True, default=8)
    keep_monthly = models.PositiveSmallIntegerField(null=True, blank=True, default=12)
    keep_yearly = models.PositiveSmallIntegerField(null=True, blank=True)
    schedule = models.CharField(max_length=128, default="daily")

    class Meta:
        abstract = True


class Tenant(RetentionPolicy):
    """A customer of the MSP, placed in one namespace on one datastore of one PBS host."""

    class Status(models.TextChoices):
        PENDING = "pending"
        ONBOARDING = "onboarding"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        OFFBOARDING = "offboarding"
        OFFBOARDED = "offboarded"
        FAILED = "failed"

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    contact_name = models.CharField(max_length=200, blank=True, default="")
    contact_email = models.EmailField(blank=True, default="")
    plan = models.ForeignKey("plans.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="tenants")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    host = models.ForeignKey(PbsHost, null=True, blank=True, on_delete=models.PROTECT, related_name="tenants")
    datastore = models.ForeignKey(Datastore, null=True, blank=True, on_delete=models.PROTECT, related_name="tenants")
    namespace = models.CharField(max_length=256, blank=True, default="", help_text="e.g. clients/acme")
    pbs_userid = models.CharField(max_length=64, blank=True, default="", help_text="e.g. acme@pbs")
    prune_job_id = models.CharField(max_length=32, blank=True, default="")
    max_restore_token_days = models.PositiveIntegerField(default=90)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    offboarded_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Writes stopped for a reason other than suspension (e.g. quota enforcement); restores stay.
    writes_blocked = models.BooleanField(default=False)
    writes_blocked_reason = models.CharField(max_length=200, blank=True, default="")
    user_privileges = models.JSONField(
        default=dict, blank=True, help_text="The PBS user's /access/permissions at the last verify."
    )
    privileges_checked_at = models.DateTimeField(null=True, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    drift_findings = models.JSONField(
        default=list, blank=True, help_text="Last drift check: [{kind, object, detail}]; [] = in sync."
    )

    class Meta:
        ordering = ["slug"]
        indexes = [
            models.Index(fields=["host", "status"]),
            models.Index(fields=["plan", "status"]),
            models.Index(fields=["name"]),
        ]

    def __str__(self) -> str:
        return self.slug

    @property
    def writes_allowed(self) -> bool:
        """False while suspended or write-blocked: backups stop, restores keep working."""
        return self.status != self.Status.SUSPENDED and not self.writes_blocked

    @property
    def acl_path(self) -> str:
        store = self.datastore.name if self.datastore else ""
        return f"/datastore/{store}/{self.namespace}" if self.namespace else f"/datastore/{store}"


class TenantToken(models.Model):
    """A PBS API token the portal made for a tenant. The secret is kept encrypted only until
    it is revealed once, then wiped."""

    class Purpose(models.TextChoices):
        BACKUP = "backup"
        RESTORE = "restore"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tokens")
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    name = models.CharField(max_length=64, help_text="Token name on PBS (SAFE_ID).")
    tokenid = models.CharField(max_length=64, help_text="user@realm!name")
    comment = models.CharField(max_length=128, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    secret_enc = models.TextField(blank=True, default="", help_text="Until revealed once.")
    secret_stored_at = models.DateTimeField(
        null=True, blank=True, help_text="When the kept secret was stored; unrevealed, it expires."
    )
    revealed_at = models.DateTimeField(null=True, blank=True)
    revealed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    effective_privileges = models.JSONField(
        default=dict, blank=True, help_text="From /access/permissions after creation: {path: {priv: propagate}}."
    )
    privileges_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tenant", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="live_token_name_unique_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return self.tokenid


class AclGrant(models.Model):
    """An ACL entry the portal put on PBS for a tenant (user or token)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="acl_grants")
    path = models.CharField(max_length=128)
    auth_id = models.CharField(max_length=64)
    role = models.CharField(max_length=32)
    propagate = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "path", "auth_id", "role"], name="acl_grant_unique")]

    def __str__(self) -> str:
        return f"{self.path} {self.auth_id} {self.role}"


class OnboardingRun(models.Model):
    """One execution of the onboarding job for a tenant; the HTMX progress page polls it."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Kind(models.TextChoices):
        ONBOARD = "onboard"
        REPAIR = "repair", "Drift repair"
        OFFBOARD = "offboard"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="onboarding_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ONBOARD)
    # Lease: the worker executing the run holds it until claimed_until; a redelivered task
    # finds it held and leaves the run alone.
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Task executions so far.")
    options = models.JSONField(default=dict, blank=True, help_text='e.g. {"delete_data": true}')
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When a task for this run is due at the latest (enqueued, or a retry's countdown):
    # until then the run is not stale, so recovery never doubles a scheduled retry.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error = models.TextField(blank=True, default="")
    error_hint = models.TextField(blank=True, default="", help_text="What staff can do about the error.")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one unfinished run per tenant: a double submit finds the live one.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_live_onboarding_run_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.tenant_id} ({self.status})"


class OnboardingStep(models.Model):
    """One check-before-create step of an onboarding run."""

    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    run = models.ForeignKey(OnboardingRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=32)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=16, blank=True, default="", help_text="created / existed / updated")
    last_error = models.TextField(blank=True, default="")
    detail = models.CharField(max_length=255, blank=True, default="", help_text="What was done.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="step_unique_per_run")]

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"
