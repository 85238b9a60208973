"""What the usage panels show: a tenant's chunk-exact figures and a datastore's split.

Read-only presenters over the attribution selectors, for the staff tenant page, the client
page and the host page. Figures are uncompressed chunk bytes; the physical share rests on
the GC of ``gc_time``. When the datastore's latest run could not read the host (method
"estimate"), the panel says so and billing uses the physical estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, Sum

from attribution.models import AttributionRun, SnapshotIndex, TenantAttribution
from attribution.selectors import DatastoreSplit, datastore_latest_run, datastore_split, tenant_attribution_latest
from attribution.services.splitting import physical_share
from tenants.models import Datastore, Tenant


@dataclass(frozen=True)
class TenantPanel:
    """A tenant's latest figures side by side; ``run`` is its datastore's latest finished run."""

    tenant: Tenant
    row: TenantAttribution | None
    run: AttributionRun | None
    logical_bytes: int | None

    @property
    def is_estimate(self) -> bool:
        """True when the host could not be read on the latest run: no chunk-exact figure."""
        return self.run is not None and self.run.method == AttributionRun.Method.ESTIMATE

    @property
    def stale(self) -> bool:
        """The figures shown are older than the datastore's latest run."""
        return self.row is not None and self.run is not None and self.row.day < self.run.day

    @property
    def dedup_ratio(self) -> Decimal | None:
        """Logical over referenced bytes (how much deduplication saves within the tenant)."""
        if self.row is None or not self.row.referenced_bytes or self.logical_bytes is None:
            return None
        return (Decimal(self.logical_bytes) / self.row.referenced_bytes).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )


def _logical_bytes(tenant: Tenant, row: TenantAttribution) -> int | None:
    """Logical bytes of the snapshots the attribution covers (every chunk reference counted)."""
    ns = tenant.namespace
    if not ns:
        return None
    total = SnapshotIndex.objects.filter(
        Q(namespace=ns) | Q(namespace__startswith=f"{ns}/"), host_id=row.host_id, datastore=row.datastore
    ).aggregate(total=Sum("logical_bytes"))["total"]
    return int(total) if total is not None else None


def tenant_panel(*, tenant: Tenant) -> TenantPanel:
    """The tenant's latest chunk-exact figures (and its datastore's latest run)."""
    row = tenant_attribution_latest(tenant_id=tenant.pk)
    run = None
    if tenant.host_id and tenant.datastore_id:
        run = datastore_latest_run(host_id=tenant.host_id, datastore=tenant.datastore.name)
    elif row is not None:
        run = row.run
    logical = _logical_bytes(tenant, row) if row is not None else None
    return TenantPanel(tenant=tenant, row=row, run=run, logical_bytes=logical)


@dataclass(frozen=True)
class SplitRow:
    label: str
    tenant: Tenant | None
    share_bytes: int
    physical_share_bytes: int | None
    percent: Decimal


@dataclass(frozen=True)
class DatastorePanel:
    datastore: Datastore
    split: DatastoreSplit
    rows: list[SplitRow]

    @property
    def run(self) -> AttributionRun | None:
        return self.split.run

    @property
    def is_estimate(self) -> bool:
        return self.run is not None and self.run.method == AttributionRun.Method.ESTIMATE


def _percent(part: int, whole: int | None) -> Decimal:
    if not whole:
        return Decimal("0.0")
    return (Decimal(part) * 100 / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def datastore_panel(*, datastore: Datastore) -> DatastorePanel:
    """How the datastore's distinct chunk bytes (and its disk use) split among its tenants and
    the namespaces no tenant owns ("others"), largest first."""
    split = datastore_split(host_id=datastore.host_id, datastore=datastore.name)
    run = split.run
    rows: list[SplitRow] = []
    if run is not None:
        total = run.distinct_bytes
        for r in split.rows:
            rows.append(
                SplitRow(r.tenant.name, r.tenant, r.share_bytes, r.physical_share_bytes, _percent(r.share_bytes, total))
            )
        if split.others_share_bytes:
            others = split.others_share_bytes
            scaled = physical_share(others, disk_bytes=run.gc_disk_bytes, distinct_bytes=total or 0)
            rows.append(SplitRow("others", None, others, scaled, _percent(others, total)))
    return DatastorePanel(datastore=datastore, split=split, rows=rows)
