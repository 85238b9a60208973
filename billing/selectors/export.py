"""The accounting export's rows: one per issued invoice of a period, in ``EXPORT_COLUMNS`` order.

The columns and their order are a public interface: new ones are only ever appended. The
chunk-exact figures (average GiB of uncompressed chunk bytes over the billed days that had
one; empty when none was measured) and the method come last.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from billing import methods
from billing.models import BillingPeriod, Invoice

EXPORT_COLUMNS = (
    "client",
    "datastore",
    "namespace",
    "size_gb",
    "month",
    "host",
    "tenant_slug",
    "metric",
    "avg_gib",
    "peak_gib",
    "samples",
    "gaps",
    "snapshots",
    "groups",
    "included_gib",
    "billable_gib",
    "unit_price",
    "base_fee",
    "amount",
    "currency",
    "invoice_number",
    # Appended for chunk-exact usage (docs/billing.md).
    "referenced_gib",
    "exclusive_gib",
    "share_gib",
    "method",
)

_EXPORT_FIELDS = (
    "client_name",
    "datastore",
    "namespace",
    "billed_gib",
    "host_name",
    "tenant_slug",
    "metric",
    "avg_gib",
    "peak_gib",
    "samples",
    "gaps",
    "snapshots",
    "groups",
    "included_gib",
    "billable_gib",
    "unit_price",
    "base_fee",
    "total",
    "currency",
    "number",
    "referenced_gib",
    "exclusive_gib",
    "share_gib",
    "estimate_days",
    "active_days",
)


def export_metric(metric: str) -> str:
    """The metric as exported: the physical figure is named an estimate wherever it appears."""
    return "physical_estimate" if metric == "physical" else metric


def export_rows(*, period: BillingPeriod, chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """One row per tenant for the period (its issued invoice), in ``EXPORT_COLUMNS`` order.

    Streams from the database in chunks, so memory stays flat however many rows there are.
    """
    month = f"{period.start:%Y-%m}"
    qs = (
        Invoice.objects.filter(period=period, status=Invoice.Status.ISSUED)
        .order_by("tenant_slug", "id")
        .values_list(*_EXPORT_FIELDS)
    )
    for row in qs.iterator(chunk_size=chunk_size):
        method = methods.export_method(row[6], estimate_days=row[-2], active_days=row[-1])
        yield (*row[:4], month, *row[4:6], export_metric(row[6]), *row[7:-2], method)


def export_dicts(*, period: BillingPeriod) -> Iterator[dict[str, Any]]:
    for row in export_rows(period=period):
        yield dict(zip(EXPORT_COLUMNS, row, strict=True))
