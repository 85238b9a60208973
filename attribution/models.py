"""Chunk-exact usage: what each snapshot references, and who owns which share of a datastore.

Every snapshot on PBS is immutable, so its chunk list is read once (through the reader
protocol) and kept compactly in ``SnapshotIndex``; a daily ``AttributionRun`` per host and
datastore reads the new snapshots, drops vanished ones and splits the datastore's distinct
chunk bytes among tenants (``TenantAttribution``). Chunk sizes are uncompressed bytes.
"""

from __future__ import annotations

from django.db import models


class SnapshotIndex(models.Model):
    """The chunks one snapshot references, as read from its manifest and indexes.

    ``digests``: sorted unique numpy uint64 (little-endian bytes), each the first 8 bytes of
    a chunk's SHA-256 digest read big-endian; ``sizes``: numpy uint32 aligned with them (the
    chunk's uncompressed size). ``chunk_refs`` counts every reference (repeats included),
    ``logical_bytes`` their sizes; ``requests`` and ``bytes_downloaded`` are what reading it cost.
    """

    host = models.ForeignKey("tenants.PbsHost", on_delete=models.CASCADE, related_name="snapshot_indexes")
    datastore = models.CharField(max_length=32)
    namespace = models.CharField(max_length=256, blank=True, default="")
    backup_type = models.CharField(max_length=8)
    backup_id = models.CharField(max_length=128)
    backup_time = models.BigIntegerField(help_text="Epoch seconds, as PBS names the snapshot.")
    digests = models.BinaryField()
    sizes = models.BinaryField()
    chunk_refs = models.BigIntegerField(default=0)
    logical_bytes = models.BigIntegerField(default=0)
    read_at = models.DateTimeField(auto_now_add=True)
    requests = models.PositiveIntegerField(default=0)
    bytes_downloaded = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["host", "datastore", "namespace", "backup_type", "backup_id", "backup_time"],
                name="attribution_snapshot_unique",
            )
        ]
        indexes = [models.Index(fields=["host", "datastore"], name="attribution_snapshot_store")]

    def __str__(self) -> str:
        ns = f"{self.namespace}:" if self.namespace else ""
        return f"{self.datastore}:{ns}{self.backup_type}/{self.backup_id}/{self.backup_time}"


class AttributionRun(models.Model):
    """One day's attribution of one datastore on one host; the progress counters move as it goes."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Method(models.TextChoices):
        EXACT = "exact", "Chunk-exact"
        ESTIMATE = "estimate", "Estimate (logical share)"

    host = models.ForeignKey("tenants.PbsHost", on_delete=models.CASCADE, related_name="attribution_runs")
    datastore = models.CharField(max_length=32)
    day = models.DateField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    snapshots_listed = models.PositiveIntegerField(default=0)
    snapshots_new = models.PositiveIntegerField(default=0)
    snapshots_read = models.PositiveIntegerField(default=0)
    snapshots_dropped = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0, help_text="PBS requests made (listings, GC, reader).")
    bytes_downloaded = models.BigIntegerField(default=0, help_text="Manifest and index bytes downloaded.")
    distinct_chunks = models.BigIntegerField(null=True, blank=True)
    distinct_bytes = models.BigIntegerField(null=True, blank=True, help_text="Uncompressed bytes of distinct chunks.")
    gc_disk_bytes = models.BigIntegerField(null=True, blank=True)
    gc_time = models.DateTimeField(null=True, blank=True, help_text="When the GC that measured disk bytes ran.")
    others_share_bytes = models.BigIntegerField(null=True, blank=True, help_text="Share of non-tenant namespaces.")
    method = models.CharField(max_length=16, choices=Method.choices, default=Method.EXACT)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "-started_at"]
        indexes = [models.Index(fields=["host", "datastore", "day"], name="attribution_run_store_day")]

    def __str__(self) -> str:
        return f"attribution {self.host_id}/{self.datastore} {self.day} ({self.status})"


class TenantAttribution(models.Model):
    """A tenant's chunk-exact figures on one datastore for one day (uncompressed chunk bytes).

    ``referenced``: distinct chunks the tenant references; ``exclusive``: chunks only it
    references; ``share``: each chunk split equally among its referencing owners;
    ``physical_share``: the share scaled by on-disk over distinct bytes (GC of ``gc_time``).
    """

    run = models.ForeignKey(AttributionRun, on_delete=models.CASCADE, related_name="tenant_rows")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="attributions")
    day = models.DateField()
    host = models.ForeignKey("tenants.PbsHost", on_delete=models.CASCADE, related_name="tenant_attributions")
    datastore = models.CharField(max_length=32)
    referenced_bytes = models.BigIntegerField()
    exclusive_bytes = models.BigIntegerField()
    share_bytes = models.BigIntegerField()
    physical_share_bytes = models.BigIntegerField(null=True, blank=True)
    gc_time = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day", "tenant_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "host", "datastore"], name="attribution_tenant_day_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day} share={self.share_bytes}"
