"""Invoice drafts: gap-free numbering and pricing a tenant month from its daily figures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from billing import pricing
from billing.models import (
    METRIC_FIELDS,
    BillingPeriod,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    UsageSample,
)
from core.actors import actor_or_none
from plans.models import Plan
from tenants.models import Tenant


def _allocate_numbers(prefix: str, year: int, count: int) -> list[str]:
    """Reserve ``count`` consecutive numbers; call inside the transaction that uses them, so a
    rollback gives them back and the sequence stays gap-free."""
    if count <= 0:
        return []
    key = f"{prefix}{year}"
    DocumentSequence.objects.get_or_create(key=key)
    seq = DocumentSequence.objects.select_for_update().get(key=key)
    first = seq.last_number + 1
    seq.last_number += count
    seq.save(update_fields=["last_number"])
    return [f"{key}-{n:06d}" for n in range(first, first + count)]


@dataclass
class DraftInvoice:
    invoice: Invoice
    lines: list[InvoiceLine] = field(default_factory=list)


@dataclass(frozen=True)
class _DayFigures:
    logical: int
    latest: int
    physical: int | None
    snapshots: int
    groups: int
    offsite: int | None = None


def _local_date(value: dt.datetime | None) -> dt.date | None:
    return None if value is None else timezone.localdate(value)


def _draft(
    *,
    tenant: Tenant,
    plan: Plan,
    period: BillingPeriod,
    days: Sequence[dt.date],
    figures: dict[dt.date, _DayFigures],
    carry_in: int | None,
    now: dt.datetime,
    actor: Any,
    offsite_carry_in: int | None = None,
) -> DraftInvoice:
    metric = METRIC_FIELDS[Plan.Metric(plan.metric)]
    attr = {"logical_bytes": "logical", "latest_bytes": "latest", "physical_estimate_bytes": "physical"}[metric]
    values = {day: getattr(f, attr) for day, f in figures.items()}
    summary = pricing.usage_summary(days, values, carry_in=carry_in)
    # The offsite copy is its own line, averaged the same way, only when the plan prices it
    # and the tenant had an offsite copy measured in (or carried into) the period.
    offsite_values = {day: f.offsite for day, f in figures.items() if f.offsite is not None}
    offsite_gib = None
    if plan.offsite_price_per_gib is not None and (offsite_values or offsite_carry_in is not None):
        offsite_gib = pricing.usage_summary(days, offsite_values, carry_in=offsite_carry_in).billed_gib
    priced = pricing.price_lines(
        billed_gib=summary.billed_gib,
        metric=plan.metric,
        included_gib=plan.included_gib,
        unit_price=plan.price_per_gib,
        base_fee=plan.base_fee,
        minimum_charge=plan.minimum_charge,
        currency=plan.currency,
        offsite_gib=offsite_gib,
        offsite_unit_price=plan.offsite_price_per_gib,
    )
    last_known = figures[max(figures)] if figures else None
    invoice = Invoice(
        period=period,
        tenant=tenant,
        status=Invoice.Status.ISSUED,
        issued_at=now,
        issued_by=actor_or_none(actor),
        client_name=tenant.name,
        tenant_slug=tenant.slug,
        host_name=tenant.host.name if tenant.host_id else "",
        datastore=tenant.datastore.name if tenant.datastore_id else "",
        namespace=tenant.namespace,
        plan_name=plan.name,
        metric=plan.metric,
        currency=plan.currency,
        included_gib=plan.included_gib,
        unit_price=plan.price_per_gib,
        base_fee=plan.base_fee,
        minimum_charge=plan.minimum_charge,
        first_day=days[0],
        last_day=days[-1],
        active_days=summary.active_days,
        samples=summary.samples,
        gaps=summary.gaps,
        avg_bytes=summary.avg_bytes,
        avg_gib=summary.avg_gib,
        peak_gib=summary.peak_gib,
        billed_gib=summary.billed_gib,
        billable_gib=priced.billable_gib,
        snapshots=last_known.snapshots if last_known else 0,
        groups=last_known.groups if last_known else 0,
        total=priced.total,
    )
    lines = [
        InvoiceLine(
            position=i,
            kind=line.kind,
            description=line.description[:255],
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            amount=line.amount,
        )
        for i, line in enumerate(priced.lines, start=1)
    ]
    return DraftInvoice(invoice=invoice, lines=lines)


def _tenant_days(tenant: Tenant, period: BillingPeriod) -> list[dt.date]:
    return pricing.active_days(
        start=period.start,
        end=period.end,
        activated_on=_local_date(tenant.activated_at),
        offboarded_on=_local_date(tenant.offboarded_at),
    )


def _billable_tenants(period: BillingPeriod) -> Any:
    """Tenants active on at least one day of the period (by local date)."""
    return (
        Tenant.objects.filter(activated_at__isnull=False, activated_at__date__lte=period.end)
        .filter(Q(offboarded_at__isnull=True) | Q(offboarded_at__date__gte=period.start))
        .select_related("plan", "host", "datastore")
    )


def _carry_ins(tenant_ids: Sequence[int], before: dt.date) -> dict[int, dict[str, int | None]]:
    """Per tenant, the last known value of each metric before ``before`` (one query per 500)."""
    out: dict[int, dict[str, int | None]] = {}
    for i in range(0, len(tenant_ids), 500):
        annotations = {
            name: Subquery(
                UsageSample.objects.filter(tenant=OuterRef("pk"), day__lt=before, **{f"{name}__isnull": False})
                .order_by("-day")
                .values(name)[:1]
            )
            for name in (*METRIC_FIELDS.values(), "offsite_bytes")
        }
        for row in (
            Tenant.objects.filter(pk__in=tenant_ids[i : i + 500])
            .annotate(**{f"carry_{k}": v for k, v in annotations.items()})
            .values("pk", *(f"carry_{k}" for k in annotations))
        ):
            out[row["pk"]] = {k: row[f"carry_{k}"] for k in annotations}
    return out


def _figures_stream(
    start: dt.date, end: dt.date, tenant_ids: Sequence[int] | None = None
) -> Iterator[tuple[int, dict[dt.date, _DayFigures]]]:
    """Yield (tenant_id, {day: figures}) in tenant id order, streaming the samples."""
    qs = UsageSample.objects.filter(day__gte=start, day__lte=end)
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    rows = qs.order_by("tenant_id", "day").values_list(
        "tenant_id", "day", "logical_bytes", "latest_bytes", "physical_estimate_bytes", "snapshot_count", "group_count",
        "offsite_bytes",
    )  # fmt: skip
    current: int | None = None
    bucket: dict[dt.date, _DayFigures] = {}
    for tenant_id, day, logical, latest, physical, snaps, groups, offsite in rows.iterator(chunk_size=5000):
        if tenant_id != current:
            if current is not None:
                yield current, bucket
            current, bucket = tenant_id, {}
        bucket[day] = _DayFigures(logical, latest, physical, snaps, groups, offsite)
    if current is not None:
        yield current, bucket
