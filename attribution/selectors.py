"""Reads of chunk-exact usage (figures are uncompressed chunk bytes)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from attribution.models import AttributionRun, TenantAttribution


@dataclass(frozen=True)
class DatastoreSplit:
    """How a datastore's distinct chunk bytes split among tenants, as the latest finished run saw it.

    ``run`` is None when the datastore was never attributed; ``rows`` are that run's
    tenant figures (largest share first); ``others_share_bytes`` is what non-tenant
    namespaces hold. With ``run.method == "estimate"`` there are no rows and ``run.error``
    says why.
    """

    run: AttributionRun | None
    rows: list[TenantAttribution] = field(default_factory=list)
    others_share_bytes: int | None = None


def tenant_attribution_latest(*, tenant_id: int) -> TenantAttribution | None:
    """The tenant's newest figures (any host or datastore), with their run."""
    return (
        TenantAttribution.objects.filter(tenant_id=tenant_id)
        .select_related("run", "host")
        .order_by("-day", "-run__finished_at", "-id")
        .first()
    )


def tenant_attribution_history(*, tenant_id: int, days: int = 90) -> list[TenantAttribution]:
    """The tenant's figures over the last ``days`` days, oldest first (one row per day and datastore)."""
    since = timezone.localdate() - dt.timedelta(days=max(0, days))
    return list(
        TenantAttribution.objects.filter(tenant_id=tenant_id, day__gte=since)
        .select_related("host")
        .order_by("day", "host_id", "datastore")
    )


def datastore_latest_run(*, host_id: int, datastore: str) -> AttributionRun | None:
    """The newest finished run of one datastore (exact or estimate)."""
    return (
        AttributionRun.objects.filter(host_id=host_id, datastore=datastore, status=AttributionRun.Status.DONE)
        .order_by("-day", "-finished_at", "-id")
        .first()
    )


def datastore_split(*, host_id: int, datastore: str) -> DatastoreSplit:
    """The latest finished run of a datastore, its tenant rows and the others' share."""
    run = datastore_latest_run(host_id=host_id, datastore=datastore)
    if run is None:
        return DatastoreSplit(run=None)
    rows = list(run.tenant_rows.select_related("tenant").order_by("-share_bytes", "tenant_id"))
    return DatastoreSplit(run=run, rows=rows, others_share_bytes=run.others_share_bytes)


def attribution_by_tenant_for_day(*, day: dt.date, tenant_ids: Iterable[int]) -> dict[int, TenantAttribution]:
    """Each tenant's figures for ``day`` (tenant id -> row; tenants without figures are absent).

    A tenant measured on two datastores that day (it moved) gets the row of the later run.
    """
    rows = (
        TenantAttribution.objects.filter(day=day, tenant_id__in=list(tenant_ids))
        .select_related("run")
        .order_by("tenant_id", "run__finished_at", "id")
    )
    return {row.tenant_id: row for row in rows}
