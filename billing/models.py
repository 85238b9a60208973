"""Plans, usage samples, metering runs, invoices and credit notes.

Money is ``Decimal`` (never float); 1 GiB = 2**30 bytes. Every billed figure is
reproducible from stored rows: a ``UsageSample`` per tenant and day holds what was
measured on PBS, an ``Invoice`` freezes the figures it was computed from, and a
mistake is corrected with a ``CreditNote`` plus a new invoice, never an edit.
The method is written down for accountants in docs/billing.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Coalesce

from billing import methods
from core.bulk import insert_rows
from plans.models import Plan

GIB = 2**30
ZERO = Decimal("0")

_non_negative = MinValueValidator(ZERO)


# --- metering ------------------------------------------------------------------


class MeteringRun(models.Model):
    """One collection of usage for one day across every PBS host (fanned out per host/chunk)."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        PARTIAL = "partial", "Partial (some gaps)"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        COMMAND = "command"

    day = models.DateField(db_index=True, help_text="The day the samples are recorded for.")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING, db_index=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    hosts_total = models.PositiveIntegerField(default=0)
    hosts_failed = models.PositiveIntegerField(default=0)
    tenants_total = models.PositiveIntegerField(default=0)
    tenants_sampled = models.PositiveIntegerField(default=0)
    tenants_gap = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0, help_text="PBS API calls made.")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"metering {self.day} ({self.status})"


class MeteringHostResult(models.Model):
    """What one PBS host (or one chunk of its tenants) gave in a metering run."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        OK = "ok"
        PARTIAL = "partial", "Partial (some tenants failed)"
        FAILED = "failed"

    run = models.ForeignKey(MeteringRun, on_delete=models.CASCADE, related_name="host_results")
    host = models.ForeignKey("tenants.PbsHost", on_delete=models.CASCADE, related_name="metering_results")
    # Tenant ids of a chunk are disjoint and sorted, so the first one names the chunk.
    first_tenant_id = models.BigIntegerField()
    tenant_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    tenants = models.PositiveIntegerField(default=0)
    sampled = models.PositiveIntegerField(default=0)
    gaps = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "host__name", "first_tenant_id"]
        constraints = [models.UniqueConstraint(fields=["run", "host", "first_tenant_id"], name="metering_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.host_id} in run {self.run_id}: {self.status}"


class UsageSample(models.Model):
    """What a tenant stored on PBS on one day, as measured by the portal.

    ``logical_bytes`` sums the logical ``size`` of every snapshot in the tenant's
    namespace and all namespaces below it; ``latest_bytes`` sums the newest sized
    snapshot of each backup group; ``physical_estimate_bytes`` apportions the
    datastore's on-disk bytes (from its last GC) to the tenant by logical share. It
    is an estimate, not a measurement, and is labelled so wherever it is shown.
    The chunk figures (``referenced_bytes`` .. ``physical_share_bytes``) are copied from the
    latest chunk-exact attribution on or before the day (``chunk_day``); empty when the host
    could not be read, so the chunk metric bills the estimate that day.
    One row per tenant and day: collecting a day again overwrites it.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="usage_samples")
    day = models.DateField()
    taken_at = models.DateTimeField()
    run = models.ForeignKey(MeteringRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="samples")
    # Where it was measured, as it was at the time.
    host_name = models.CharField(max_length=64)
    datastore = models.CharField(max_length=32)
    namespace = models.CharField(max_length=256)
    logical_bytes = models.BigIntegerField()
    latest_bytes = models.BigIntegerField()
    physical_estimate_bytes = models.BigIntegerField(null=True, blank=True)
    offsite_bytes = models.BigIntegerField(
        null=True, blank=True,
        help_text="Logical bytes of the tenant's offsite copies, as the last offsite status refresh measured "
        "them in the target namespaces. Empty: no offsite copy, or never measured.",
    )
    snapshot_count = models.PositiveIntegerField()
    unsized_snapshot_count = models.PositiveIntegerField(
        default=0, help_text="Snapshots without a size (running or broken backups), counted as 0."
    )
    group_count = models.PositiveIntegerField()
    namespace_count = models.PositiveIntegerField()
    newest_backup_at = models.DateTimeField(null=True, blank=True)
    oldest_backup_at = models.DateTimeField(null=True, blank=True)
    # The datastore's GC figures used for the physical estimate.
    gc_index_data_bytes = models.BigIntegerField(null=True, blank=True)
    gc_disk_bytes = models.BigIntegerField(null=True, blank=True)
    gc_source = models.CharField(
        max_length=8, blank=True, default="", help_text="live (asked PBS now), cached or empty"
    )
    # Chunk-exact figures (uncompressed chunk bytes), from the attribution of ``chunk_day``.
    referenced_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Distinct chunks the tenant references (uncompressed)."
    )
    exclusive_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Chunks only this tenant references (what offboarding it would free)."
    )
    share_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="Each chunk's bytes split equally among the tenants referencing it."
    )
    physical_share_bytes = models.BigIntegerField(
        null=True, blank=True, help_text="The share scaled by the datastore's disk bytes over its distinct chunk bytes."
    )
    chunk_gc_at = models.DateTimeField(
        null=True, blank=True, help_text="When the GC ran whose disk bytes the physical share rests on."
    )
    chunk_day = models.DateField(null=True, blank=True, help_text="The day of the attribution the figures come from.")

    class Meta:
        ordering = ["tenant", "day"]
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="usage_sample_unique_per_day")]
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}: {self.logical_bytes} B"


# Which UsageSample field a plan's metric bills (and alerts measure quotas by): the one mapping.
METRIC_FIELDS = {
    Plan.Metric.LOGICAL: "logical_bytes",
    Plan.Metric.LATEST: "latest_bytes",
    Plan.Metric.PHYSICAL: "physical_estimate_bytes",
    Plan.Metric.CHUNK: "physical_share_bytes",
}

# A metric whose own figure may be missing on a day bills this field instead that day.
METRIC_FALLBACK_FIELDS = {
    Plan.Metric.CHUNK: "physical_estimate_bytes",
}


def metric_value_expression(metric: str) -> models.Expression | models.F:
    """The billed value of ``metric`` for one UsageSample row, as a query expression: the one
    place pricing (the close, drafts) reads a sample's billed figure from.

    The chunk metric bills the chunk-exact physical share and, on a day without one, the
    physical estimate (``Coalesce``); ``Invoice.estimate_days`` counts those days."""
    metric = Plan.Metric(metric)
    field = models.F(METRIC_FIELDS[metric])
    fallback = METRIC_FALLBACK_FIELDS.get(metric)
    if fallback is None:
        return field
    return Coalesce(field, models.F(fallback), output_field=models.BigIntegerField())


class MeteringGap(models.Model):
    """A tenant and day for which no sample could be taken, and why. Removed once a later
    collection of that day succeeds. Billing counts missing days itself; this says why."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="metering_gaps")
    day = models.DateField()
    run = models.ForeignKey(MeteringRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="gaps")
    host_name = models.CharField(max_length=64, blank=True, default="")
    reason = models.TextField()
    recorded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "tenant"]
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="metering_gap_unique_per_day")]

    def __str__(self) -> str:
        return f"gap {self.tenant_id} {self.day}"


# --- invoicing -----------------------------------------------------------------


class DocumentSequence(models.Model):
    """Gap-free numbering for invoices and credit notes, one counter per prefix and year."""

    key = models.CharField(max_length=32, unique=True, help_text="e.g. INV-2026")
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.last_number}"


class BillingPeriod(models.Model):
    """A calendar month; closed once, which issues its invoices."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    start = models.DateField(unique=True, help_text="First day of the month.")
    end = models.DateField(help_text="Last day of the month.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    notes = models.JSONField(default=dict, blank=True, help_text="Close outcome: tenants skipped (no plan), counts.")

    class Meta:
        ordering = ["-start"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.start:%Y-%m}"


class DocumentFrozen(Exception):
    """An attempt to edit or delete an issued invoice, line or credit note."""


class FrozenDocument(models.Model):
    """An issued document: its figures can never change after it is written."""

    class Meta:
        abstract = True

    # Fields that may change after issue (state, not figures).
    MUTABLE_FIELDS: frozenset[str] = frozenset()

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= self.MUTABLE_FIELDS:  # type: ignore[arg-type]
                raise DocumentFrozen(f"{type(self).__name__} {self.pk} is issued and frozen")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise DocumentFrozen(f"{type(self).__name__} {self.pk} is issued and cannot be deleted")


class InvoiceQuerySet(models.QuerySet):
    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        methods.freeze_chunk_figures(objs, samples=UsageSample.objects)
        return super().bulk_create(objs, *args, **kwargs)

    def insert_issued(self, objs: Sequence[Any]) -> None:
        """Write new invoices in bulk (the close): frozen as bulk_create freezes them, faster."""
        methods.freeze_chunk_figures(objs, samples=UsageSample.objects)
        insert_rows(objs, using=self.db)


class InvoiceLineQuerySet(models.QuerySet):
    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        methods.label_usage_lines(objs)
        return super().bulk_create(objs, *args, **kwargs)

    def insert_issued(self, objs: Sequence[Any]) -> None:
        """Write new invoice lines in bulk (the close): labelled as bulk_create labels them, faster."""
        methods.label_usage_lines(objs)
        insert_rows(objs, using=self.db)


class Invoice(FrozenDocument):
    """A tenant's bill for one period, with every figure it was computed from.

    The tenant's name, placement, plan and usage are copied at issue time so the
    invoice (and the CSV export, which reads only this table) never changes when
    the tenant or plan is edited later. A correction credits it in full
    (``CreditNote``) and issues a new invoice that ``replaces`` it. The chunk figures
    (``referenced_gib`` .. ``estimate_days``) are frozen from the samples as the invoice
    is written, however it is written (``save`` or ``bulk_create``).
    """

    class Status(models.TextChoices):
        ISSUED = "issued"
        CREDITED = "credited", "Credited (replaced or cancelled)"

    MUTABLE_FIELDS = frozenset({"status"})

    number = models.CharField(max_length=32, unique=True)
    period = models.ForeignKey(BillingPeriod, on_delete=models.PROTECT, related_name="invoices")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="invoices")
    replaces = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ISSUED, db_index=True)
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who and where, frozen.
    client_name = models.CharField(max_length=200)
    tenant_slug = models.CharField(max_length=32)
    host_name = models.CharField(max_length=64, blank=True, default="")
    datastore = models.CharField(max_length=32, blank=True, default="")
    namespace = models.CharField(max_length=256, blank=True, default="")
    # Price list, frozen.
    plan_name = models.CharField(max_length=64)
    metric = models.CharField(max_length=16, choices=Plan.Metric.choices)
    currency = models.CharField(max_length=3)
    included_gib = models.DecimalField(max_digits=12, decimal_places=2)
    unit_price = models.DecimalField(max_digits=12, decimal_places=6)
    base_fee = models.DecimalField(max_digits=12, decimal_places=2)
    minimum_charge = models.DecimalField(max_digits=12, decimal_places=2)
    # Usage, frozen.
    first_day = models.DateField(help_text="First active day billed.")
    last_day = models.DateField(help_text="Last active day billed.")
    active_days = models.PositiveSmallIntegerField()
    samples = models.PositiveSmallIntegerField(help_text="Active days with a sample.")
    gaps = models.PositiveSmallIntegerField(help_text="Active days without one (carried).")
    avg_bytes = models.DecimalField(max_digits=30, decimal_places=6)
    avg_gib = models.DecimalField(max_digits=20, decimal_places=6)
    peak_gib = models.DecimalField(max_digits=20, decimal_places=6)
    billed_gib = models.DecimalField(
        max_digits=20, decimal_places=2, help_text="Average rounded half-up to 2 decimals."
    )
    billable_gib = models.DecimalField(max_digits=20, decimal_places=2)
    snapshots = models.PositiveIntegerField(help_text="Snapshot count of the last sample.")
    groups = models.PositiveIntegerField(help_text="Group count of the last sample.")
    total = models.DecimalField(max_digits=14, decimal_places=2)
    note = models.TextField(blank=True, default="", help_text="Correction reason, if any.")
    # Chunk figures of the billed days, frozen (uncompressed chunk bytes; empty: none measured).
    referenced_gib = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    exclusive_gib = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    share_gib = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    estimate_days = models.PositiveSmallIntegerField(
        null=True, blank=True,
        help_text="Chunk metric: days billed on the physical estimate (no chunk-exact figure). Empty: other metrics.",
    )

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        ordering = ["period", "tenant_slug", "issued_at"]
        constraints = [
            # One original invoice per tenant and period; corrections carry `replaces`.
            models.UniqueConstraint(
                fields=["tenant", "period"],
                condition=models.Q(replaces__isnull=True),
                name="one_original_invoice_per_tenant_period",
            )
        ]
        indexes = [models.Index(fields=["period", "status", "tenant_slug"])]

    def __str__(self) -> str:
        return self.number

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding:
            methods.freeze_chunk_figures([self], samples=UsageSample.objects)
        super().save(*args, **kwargs)

    @property
    def method(self) -> str:
        """How the billed usage was measured, in words (estimate days included)."""
        return methods.invoice_method(self.metric, estimate_days=self.estimate_days, active_days=self.active_days)


class InvoiceLine(FrozenDocument):
    """One numbered line of an invoice; ``amount`` is rounded half-up to the cent."""

    class Kind(models.TextChoices):
        BASE_FEE = "base_fee", "Monthly base fee"
        USAGE = "usage", "Storage usage"
        OFFSITE = "offsite", "Offsite copy"
        MINIMUM = "minimum", "Minimum charge top-up"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=255)
    quantity = models.DecimalField(max_digits=20, decimal_places=2)
    unit = models.CharField(max_length=16)
    unit_price = models.DecimalField(max_digits=12, decimal_places=6)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    objects = InvoiceLineQuerySet.as_manager()

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique")]

    def __str__(self) -> str:
        return f"{self.invoice_id}#{self.position}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding:
            methods.label_usage_lines([self])
        super().save(*args, **kwargs)


class CreditNote(FrozenDocument):
    """Cancels an invoice in full. A corrected bill is a new invoice replacing it."""

    number = models.CharField(max_length=32, unique=True)
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="credit_note")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="credit_notes")
    period = models.ForeignKey(BillingPeriod, on_delete=models.PROTECT, related_name="credit_notes")
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(
        max_digits=14, decimal_places=2, help_text="Credited amount (positive; the invoice total)."
    )
    reason = models.TextField()
    issued_at = models.DateTimeField()
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return self.number
