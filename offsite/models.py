"""Offsite replication: PBS remotes and pull sync jobs the portal keeps on the MSP's hosts.

The shape on PBS (see docs/offsite.md):
- a *remote* lives on the pulling (offsite) host and points at the source host with a
  dedicated read-only token the portal made there;
- a *policy* replicates one source datastore to a datastore on another host, either with one
  datastore-wide sync job or with one job per tenant who has offsite;
- each sync job the portal made is a SyncJobRecord with its last known run status.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Remote(models.Model):
    """A remote in `/config/remote` of the pulling host, and the credential it pulls with.

    Managed remotes point at a PBS host the portal manages: the portal made a dedicated
    user + token there (DatastoreReader on the replicated paths only). External remotes point
    at any PBS given by address, fingerprint, auth-id and secret. The secret stays encrypted
    at rest because re-creating a remote that vanished from PBS needs it again.
    """

    class Kind(models.TextChoices):
        MANAGED = "managed"
        EXTERNAL = "external"

    class State(models.TextChoices):
        PENDING = "pending"
        READY = "ready"
        FAILED = "failed"

    pulling_host = models.ForeignKey(
        "tenants.PbsHost", on_delete=models.PROTECT, related_name="offsite_remotes"
    )
    name = models.CharField(max_length=32, help_text="Remote id on the pulling host (SAFE_ID).")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.MANAGED)
    source_host = models.ForeignKey(
        "tenants.PbsHost",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="offsite_sources",
        help_text="Managed remotes: the portal's host the remote points at.",
    )
    host = models.CharField(max_length=255, help_text="DNS name or IP the pulling host connects to.")
    port = models.PositiveIntegerField(default=8007)
    fingerprint = models.CharField(max_length=95, blank=True, default="")
    auth_id = models.CharField(max_length=64, help_text="Auth-id the pull uses on the source.")
    secret_enc = models.TextField(blank=True, default="", help_text="Fernet-encrypted secret.")
    source_userid = models.CharField(
        max_length=64, blank=True, default="", help_text="Managed: the pull user made on the source."
    )
    comment = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    last_error = models.TextField(blank=True, default="")
    ensured_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["pulling_host__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["pulling_host", "name"], name="offsite_remote_unique_name"),
            models.CheckConstraint(
                name="offsite_managed_remote_has_source",
                condition=~models.Q(kind="managed") | models.Q(source_host__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pulling_host.name}:{self.name}"

    def __repr__(self) -> str:
        # Never the secret, not even encrypted.
        return f"<Remote {self.pk} {self.name} on host {self.pulling_host_id}>"


class SourceGrant(models.Model):
    """An ACL entry the portal set on the source host for a managed remote's pull user/token."""

    remote = models.ForeignKey(Remote, on_delete=models.CASCADE, related_name="source_grants")
    path = models.CharField(max_length=128)
    auth_id = models.CharField(max_length=64)
    role = models.CharField(max_length=32, default="DatastoreReader")
    tenant = models.ForeignKey(
        "tenants.Tenant",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="offsite_source_grants",
        help_text="Set when the grant exists only for one tenant's job.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["remote", "path", "auth_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["remote", "path", "auth_id", "role"], name="offsite_source_grant_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.path} {self.auth_id} {self.role}"


class OffsitePolicy(models.Model):
    """Replicate a source datastore to a datastore on another PBS host with pull sync jobs.

    Scope ``datastore``: one job copies the whole datastore, so every tenant on it is included.
    Scope ``tenants``: one job per tenant with offsite (an option a tenant buys); with
    ``auto_include_tenants`` onboarding adds every new tenant on the datastore.
    A tenant's copy lands in ``target_ns/<tenant namespace>`` on the target datastore.
    """

    class Scope(models.TextChoices):
        DATASTORE = "datastore"
        TENANTS = "tenants"

    source_datastore = models.ForeignKey(
        "tenants.Datastore",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="offsite_policies_out",
        help_text="Unset when the source is an external PBS (then only the datastore scope).",
    )
    source_store = models.CharField(max_length=32, help_text="Datastore name on the source.")
    target_datastore = models.ForeignKey(
        "tenants.Datastore", on_delete=models.PROTECT, related_name="offsite_policies_in"
    )
    remote = models.ForeignKey(Remote, on_delete=models.PROTECT, related_name="policies")
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.DATASTORE)
    auto_include_tenants = models.BooleanField(
        default=False, help_text="Tenants scope: onboarding includes new tenants automatically."
    )
    target_ns = models.CharField(
        max_length=256, blank=True, default="", help_text="Namespace prefix on the target datastore."
    )
    enabled = models.BooleanField(default=True)
    # Sync job options (PBS /config/sync).
    schedule = models.CharField(max_length=128, default="hourly")
    rate_in = models.CharField(max_length=64, blank=True, default="", help_text="e.g. 10 MiB")
    burst_in = models.CharField(max_length=64, blank=True, default="")
    remove_vanished = models.BooleanField(default=False)
    encrypted_only = models.BooleanField(default=False)
    verified_only = models.BooleanField(default=False)
    transfer_last = models.PositiveIntegerField(null=True, blank=True)
    group_filters = models.JSONField(default=list, blank=True, help_text="PBS group-filter values.")
    owner = models.CharField(
        max_length=64, blank=True, default="", help_text="Owner of synced groups on the target."
    )
    max_depth = models.PositiveSmallIntegerField(null=True, blank=True)
    stale_after_hours = models.PositiveIntegerField(
        default=48, help_text="A source snapshot older than this must have reached the copy."
    )
    comment = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["remote__name", "source_store", "id"]
        verbose_name_plural = "offsite policies"
        constraints = [
            models.UniqueConstraint(
                fields=["remote", "source_store", "target_datastore"],
                name="offsite_policy_unique_pair",
            ),
            models.CheckConstraint(
                name="offsite_tenant_scope_needs_managed_source",
                condition=~models.Q(scope="tenants") | models.Q(source_datastore__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"policy {self.pk}: {self.remote_id}/{self.source_store} -> {self.target_datastore_id}"


class TenantOffsite(models.Model):
    """A tenant's place in an offsite policy, and how far behind its offsite copy is."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="offsite_memberships"
    )
    policy = models.ForeignKey(OffsitePolicy, on_delete=models.CASCADE, related_name="memberships")
    max_depth = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Tenants scope: recursion below the tenant namespace."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Staleness, from the last status refresh.
    checked_at = models.DateTimeField(null=True, blank=True)
    source_newest_at = models.DateTimeField(null=True, blank=True)
    target_newest_at = models.DateTimeField(null=True, blank=True)
    stale = models.BooleanField(default=False, db_index=True)
    stale_reason = models.CharField(max_length=255, blank=True, default="")
    target_logical_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Sum of snapshot sizes in the target namespace."
    )
    target_snapshot_count = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["tenant__slug", "policy_id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "policy"], name="offsite_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} in policy {self.policy_id}"

    @property
    def lag_seconds(self) -> int | None:
        if self.source_newest_at is None or self.target_newest_at is None:
            return None
        return max(0, int((self.source_newest_at - self.target_newest_at).total_seconds()))


class SyncJobRecord(models.Model):
    """A sync job the portal keeps on a pulling host, with what was last read from /admin/sync."""

    class State(models.TextChoices):
        PENDING = "pending"
        PRESENT = "present"
        FAILED = "failed"

    policy = models.ForeignKey(OffsitePolicy, on_delete=models.CASCADE, related_name="jobs")
    membership = models.OneToOneField(
        TenantOffsite,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="job",
        help_text="Set for a tenant-scoped job.",
    )
    host = models.ForeignKey("tenants.PbsHost", on_delete=models.PROTECT, related_name="offsite_jobs")
    job_id = models.CharField(max_length=32)
    store = models.CharField(max_length=32)
    ns = models.CharField(max_length=256, blank=True, default="")
    remote_name = models.CharField(max_length=32)
    remote_store = models.CharField(max_length=32)
    remote_ns = models.CharField(max_length=256, blank=True, default="")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    last_error = models.TextField(blank=True, default="")
    ensured_at = models.DateTimeField(null=True, blank=True)
    # From GET /admin/sync.
    status_checked_at = models.DateTimeField(null=True, blank=True)
    last_run_state = models.CharField(max_length=255, blank=True, default="")
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_upid = models.CharField(max_length=255, blank=True, default="")
    next_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["host__name", "job_id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "job_id"], name="offsite_job_unique_per_host"),
            models.UniqueConstraint(
                fields=["policy"],
                condition=models.Q(membership__isnull=True),
                name="offsite_one_datastore_job_per_policy",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.host_id}:{self.job_id}"

    @property
    def last_run_ok(self) -> bool | None:
        if not self.last_run_state:
            return None
        return self.last_run_state == "OK" or self.last_run_state.startswith("WARNINGS")
