"""Splitting a datastore's distinct chunk bytes among its tenants (the stored snapshot indexes in,
``TenantAttribution`` rows out). The arithmetic is ``attribution.engine``'s; this module decides
who owns which snapshot and stores the figures."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterable

import numpy as np

from attribution.engine import Attribution, attribute
from attribution.models import AttributionRun, SnapshotIndex, TenantAttribution
from tenants.models import Tenant
from tenants.naming import stored_names

# The owner key of every namespace that belongs to no tenant; sorts after every tenant id, so a
# chunk's leftover bytes go to tenants first (the engine's rule).
OTHERS = sys.maxsize


def datastore_tenants(*, host_id: int, store: str) -> dict[int, str]:
    """Tenant id -> namespace of the tenants placed on this datastore (offboarded ones left out)."""
    rows = (
        Tenant.objects.filter(host_id=host_id, datastore__name=store)
        .exclude(namespace="")
        .exclude(status=Tenant.Status.OFFBOARDED)
        .order_by("id")
    )
    return {tenant.pk: stored_names(tenant).namespace for tenant in rows}


def owner_of(namespace: str, tenant_namespaces: Iterable[tuple[int, str]]) -> int:
    """The tenant whose namespace is ``namespace`` or one of its ancestors (the deepest one wins), else OTHERS."""
    best, depth = OTHERS, -1
    for tenant_id, tenant_ns in tenant_namespaces:
        if (namespace == tenant_ns or namespace.startswith(tenant_ns + "/")) and len(tenant_ns) > depth:
            best, depth = tenant_id, len(tenant_ns)
    return best


def datastore_attribution(*, host_id: int, store: str, tenants: dict[int, str]) -> Attribution:
    """Group the stored snapshot indexes of a datastore by owner and attribute them."""
    pairs = list(tenants.items())
    owners: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {tenant_id: [] for tenant_id in tenants}
    ns_owner: dict[str, int] = {}
    rows = SnapshotIndex.objects.filter(host_id=host_id, datastore=store).values_list("namespace", "digests", "sizes")
    for namespace, digests, sizes in rows.iterator(chunk_size=500):
        key = ns_owner.get(namespace)
        if key is None:
            key = ns_owner[namespace] = owner_of(namespace, pairs)
        owners.setdefault(key, []).append(
            (np.frombuffer(bytes(digests), dtype="<u8").astype(np.uint64, copy=False),
             np.frombuffer(bytes(sizes), dtype="<u4").astype(np.uint32, copy=False))
        )  # fmt: skip
    return attribute(owners)


def physical_share(share: int, *, disk_bytes: int | None, distinct_bytes: int) -> int | None:
    """``share x disk / distinct``, half-up to whole bytes; None without GC figures."""
    if not disk_bytes or distinct_bytes <= 0:
        return None
    return (share * disk_bytes * 2 + distinct_bytes) // (2 * distinct_bytes)


def tenant_rows_write(
    *, run: AttributionRun, result: Attribution, tenants: dict[int, str], gc_time: dt.datetime | None
) -> None:
    """Replace the day's tenant rows of this datastore with ``result`` (inside the caller's transaction)."""
    TenantAttribution.objects.filter(day=run.day, host_id=run.host_id, datastore=run.datastore).delete()
    rows = []
    for tenant_id in tenants:
        figures = result.figures[tenant_id]
        physical = physical_share(figures.share, disk_bytes=run.gc_disk_bytes, distinct_bytes=result.distinct_bytes)
        rows.append(
            TenantAttribution(
                run=run,
                tenant_id=tenant_id,
                day=run.day,
                host_id=run.host_id,
                datastore=run.datastore,
                referenced_bytes=figures.referenced,
                exclusive_bytes=figures.exclusive,
                share_bytes=figures.share,
                physical_share_bytes=physical,
                gc_time=gc_time if physical is not None else None,
            )
        )
    TenantAttribution.objects.bulk_create(rows)
