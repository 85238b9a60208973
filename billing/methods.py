"""How a billed figure was measured, in words: the method stated on invoice lines and in the CSV.

Plain functions of the invoice's frozen figures (no database), so the invoice, its usage
line and the accounting export say the same thing. The chunk metric bills the tenant's
chunk-exact physical share; a day without a chunk-exact figure (the host could not be read,
or no attribution ran yet) bills the physical estimate instead, and the method says on how
many days it did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Q, Sum

CHUNK = "chunk"
USAGE_LINE = "usage"
GIB = 2**30
MICRO = Decimal("0.000001")

METHOD_TEXT = {
    "logical": "logical bytes, all snapshots",
    "latest": "latest snapshot per group",
    "physical": "physical estimate (apportioned from datastore GC figures)",
    CHUNK: "chunk-exact physical share (uncompressed chunk bytes scaled to disk by the datastore GC)",
}

# The short form the accounting export carries in its ``method`` column.
EXPORT_METHOD = {
    "logical": "logical",
    "latest": "latest",
    "physical": "physical estimate",
    CHUNK: "chunk-exact",
}


def estimate_note(estimate_days: int | None, active_days: int) -> str:
    """``"physical estimate on 3 of 31 days"`` when the chunk metric fell back, else ``""``."""
    if not estimate_days:
        return ""
    return f"physical estimate on {estimate_days} of {active_days} day{'s' if active_days != 1 else ''}"


def _with_estimate_note(text: str, metric: str, estimate_days: int | None, active_days: int) -> str:
    note = estimate_note(estimate_days, active_days) if metric == CHUNK else ""
    return f"{text}; {note}" if note else text


def invoice_method(metric: str, *, estimate_days: int | None, active_days: int) -> str:
    """The method of an invoice's usage figure, for people (the invoice page)."""
    return _with_estimate_note(METHOD_TEXT.get(metric, metric), metric, estimate_days, active_days)


def export_method(metric: str, *, estimate_days: int | None, active_days: int) -> str:
    """The method as the accounting CSV states it: ``chunk-exact`` or, when some days fell
    back, ``chunk-exact; physical estimate on 3 of 31 days``."""
    return _with_estimate_note(EXPORT_METHOD.get(metric, metric), metric, estimate_days, active_days)


def usage_line_description(
    metric: str, *, billed_gib: Decimal, included_gib: Decimal, estimate_days: int | None, active_days: int
) -> str:
    """The usage line's text for a chunk-metric invoice (at most 255 characters)."""
    text = f"Storage, {invoice_method(metric, estimate_days=estimate_days, active_days=active_days)}: "
    text += f"average {billed_gib} GiB, {included_gib} GiB included"
    return text[:255]


def estimate_day_filter() -> Q:
    """The samples on which the chunk metric bills the physical estimate (no chunk figure)."""
    return Q(physical_share_bytes__isnull=True, physical_estimate_bytes__isnull=False)


def _gib(total: int, count: int) -> Decimal:
    return (Decimal(total) / count / GIB).quantize(MICRO, rounding=ROUND_HALF_UP)


def freeze_chunk_figures(invoices: Sequence[Any], *, samples: Any) -> None:
    """Copy onto unsaved invoices what the samples (``samples``: the UsageSample manager) of
    their billed days say about chunks: the average referenced, exclusive and share (GiB, over
    the days that had a chunk figure) and, on the chunk metric, how many days billed the
    physical estimate instead.

    One grouped query per billed-day range and 1,000 tenants; none when the range holds no
    chunk figure and no invoice is on the chunk metric (a close without chunks pays nothing).
    """
    todo = [i for i in invoices if i._state.adding and i.tenant_id and i.first_day and i.last_day]
    if not todo:
        return
    lo, hi = min(i.first_day for i in todo), max(i.last_day for i in todo)
    if not any(i.metric == CHUNK for i in todo) and not samples.filter(
        tenant_id__in={i.tenant_id for i in todo}, day__gte=lo, day__lte=hi, referenced_bytes__isnull=False
    ).exists():  # these tenants' rows only (by the tenant-and-day index), not every tenant's month
        return
    by_range: dict[tuple[Any, Any], list[Any]] = {}
    for invoice in todo:
        by_range.setdefault((invoice.first_day, invoice.last_day), []).append(invoice)
    for (first, last), group in by_range.items():
        for n in range(0, len(group), 1000):
            part = group[n : n + 1000]
            rows = {
                row["tenant_id"]: row
                for row in samples.filter(tenant_id__in=[i.tenant_id for i in part], day__gte=first, day__lte=last)
                .values("tenant_id")
                .annotate(
                    chunk_days=Count("referenced_bytes"),
                    referenced=Sum("referenced_bytes"),
                    exclusive=Sum("exclusive_bytes"),
                    share=Sum("share_bytes"),
                    estimate=Count("pk", filter=estimate_day_filter()),
                )
            }
            for invoice in part:
                row = rows.get(invoice.tenant_id)
                if row and row["chunk_days"]:
                    invoice.referenced_gib = _gib(row["referenced"], row["chunk_days"])
                    invoice.exclusive_gib = _gib(row["exclusive"], row["chunk_days"])
                    invoice.share_gib = _gib(row["share"], row["chunk_days"])
                if invoice.metric == CHUNK:
                    invoice.estimate_days = row["estimate"] if row else 0


def label_usage_lines(lines: Iterable[Any]) -> None:
    """The usage line of a chunk-metric invoice states its method, estimate days included."""
    for line in lines:
        if not line._state.adding or line.kind != USAGE_LINE:
            continue
        invoice = line.invoice
        if invoice.metric != CHUNK:
            continue
        line.description = usage_line_description(
            invoice.metric,
            billed_gib=invoice.billed_gib,
            included_gib=invoice.included_gib,
            estimate_days=invoice.estimate_days,
            active_days=invoice.active_days,
        )
