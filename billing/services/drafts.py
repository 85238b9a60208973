"""Invoice drafts: gap-free numbering, and pricing tenant months from their samples.

A tenant month is priced from aggregated samples where it can be (one grouped query per
batch of tenants and plan metric: count, sum and peak of the billed value), and from its
daily rows only where a day inside the month lacks a value (a hole the previous value must
fill) or the tenant was active on part of the month. Both give the same figures
(``pricing.usage_summary_from_totals`` is ``pricing.usage_summary`` for a run of days
without a hole). The billed value of a sample is read only through
``billing.models.metric_value_expression``.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db.models import Count, Max, Min, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from billing import pricing
from billing.models import (
    BillingPeriod,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    UsageSample,
    metric_value_expression,
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


class _DayFigures(NamedTuple):
    """One daily sample as pricing sees it: the billed value of the plan's metric (a named
    tuple: one is made per daily row read, so it is the cheapest record there is)."""

    value: int | None
    snapshots: int
    groups: int
    offsite: int | None = None


@dataclass(frozen=True)
class _MonthUsage:
    """What an invoice needs of a tenant month's samples."""

    summary: pricing.UsageSummary
    offsite: pricing.UsageSummary | None  # None: no offsite copy measured in or carried into the month
    snapshots: int  # of the last sample in the active days (0: none)
    groups: int


def _local_date(value: dt.datetime | None) -> dt.date | None:
    return None if value is None else timezone.localdate(value)


def _draft(
    *, tenant: Tenant, plan: Plan, period: BillingPeriod, days: Sequence[dt.date], usage: _MonthUsage,
    now: dt.datetime, actor: Any,
) -> DraftInvoice:  # fmt: skip
    summary = usage.summary
    # The offsite copy is its own line, averaged the same way, only when the plan prices it
    # and the tenant had an offsite copy measured in (or carried into) the period.
    offsite_gib = None
    if plan.offsite_price_per_gib is not None and usage.offsite is not None:
        offsite_gib = usage.offsite.billed_gib
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
        snapshots=usage.snapshots,
        groups=usage.groups,
        total=priced.total,
    )
    lines = [
        InvoiceLine(
            invoice=invoice,  # unsaved yet: its id is taken when the lines are written after it
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
    return list(_active_days(period.start, period.end, _local_date(tenant.activated_at),
                             _local_date(tenant.offboarded_at)))  # fmt: skip


@functools.lru_cache(maxsize=256)
def _active_days(
    start: dt.date, end: dt.date, activated: dt.date | None, offboarded: dt.date | None
) -> tuple[dt.date, ...]:
    """``pricing.active_days``, once per distinct (period, activation, offboarding): most
    tenants of a close share the whole month."""
    if activated is not None:
        activated = max(activated, start)  # every earlier activation gives the same days
    if offboarded is not None and offboarded > end:
        offboarded = end
    return tuple(pricing.active_days(start=start, end=end, activated_on=activated, offboarded_on=offboarded))


def _billable_tenants(period: BillingPeriod) -> Any:
    """Tenants active on at least one day of the period (by local date): activated before the
    local midnight that ends the period, not offboarded before the one that starts it
    (compared as instants, so the database uses plain comparisons)."""
    zone = timezone.get_current_timezone()
    opens = dt.datetime.combine(period.start, dt.time.min, tzinfo=zone)
    closes = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return (
        Tenant.objects.filter(activated_at__isnull=False, activated_at__lt=closes)
        .filter(Q(offboarded_at__isnull=True) | Q(offboarded_at__gte=opens))
        .select_related("plan", "host", "datastore")
    )


# --- reading the samples -------------------------------------------------------------------

_BATCH = 1000  # tenants per query (well under every database's parameter limit)


def month_usage(
    *, tenants: Sequence[tuple[Tenant, Plan, Sequence[dt.date]]], period: BillingPeriod
) -> dict[int, _MonthUsage]:
    """Price inputs for each (tenant, the plan it is billed on, its active days in ``period``),
    by tenant id.

    Per plan metric and batch of tenants: one grouped query (tenants active the whole month),
    one per distinct last sample day for those samples' rows, the daily rows of the tenants
    the totals cannot answer (a hole inside the month, or part of the month active), one for
    the values carried in from before the month. Memory is bounded by the batch.
    """
    by_metric: dict[str, list[tuple[Tenant, Sequence[dt.date]]]] = {}
    for tenant, plan, days in tenants:
        by_metric.setdefault(plan.metric, []).append((tenant, days))
    out: dict[int, _MonthUsage] = {}
    for metric, group in by_metric.items():
        for i in range(0, len(group), _BATCH):
            out.update(_month_usage_batch(group[i : i + _BATCH], period=period, metric=metric))
    return out


def _month_usage_batch(
    group: Sequence[tuple[Tenant, Sequence[dt.date]]], *, period: BillingPeriod, metric: str
) -> dict[int, _MonthUsage]:
    start, end = period.start, period.end
    full_month = (end - start).days + 1
    whole = [t.pk for t, days in group if len(days) == full_month]
    totals = _month_totals(whole, start=start, end=end, metric=metric)
    # Per tenant either its totals (values on consecutive days) or, with a hole, its rows.
    runs: dict[int, dict[str, Any]] = {}
    rowwise: list[int] = [t.pk for t, days in group if len(days) != full_month]
    for pk in whole:
        row = totals.get(pk)
        if row is None:
            runs[pk] = {}
        elif _is_run(row):
            runs[pk] = row
        else:
            rowwise.append(pk)
    _add_last_rows(runs, metric=metric)
    figures: dict[int, dict[dt.date, _DayFigures]] = dict(
        _figures_stream(start, end, tenant_ids=rowwise, metric=metric) if rowwise else ()
    )
    # A month billed from its first day without a sample that day starts from the last
    # value known before it (as the daily rule does for any missing day).
    need_carry = [
        t.pk
        for t, days in group
        if days[0] == start
        and (start not in figures.get(t.pk, {}) if t.pk not in runs else not runs[t.pk].get("rows_at_start"))
    ]
    carry = _carry_ins(need_carry, start, metric=metric)
    out: dict[int, _MonthUsage] = {}
    for tenant, days in group:
        carry_in, offsite_carry_in = carry.get(tenant.pk, (None, None))
        if tenant.pk in runs:
            out[tenant.pk] = _usage_from_totals(runs[tenant.pk], days=days, carry_in=carry_in,
                                                offsite_carry_in=offsite_carry_in)  # fmt: skip
        else:
            out[tenant.pk] = _usage_from_rows(days, figures.get(tenant.pk, {}), carry_in=carry_in,
                                              offsite_carry_in=offsite_carry_in)  # fmt: skip
    return out


def _month_totals(tenant_ids: Sequence[int], *, start: dt.date, end: dt.date, metric: str) -> dict[int, dict[str, Any]]:
    """One grouped query: per tenant the count, sum and peak of the billed value over
    [start, end], the first and last day with a value, and the same for the offsite copy."""
    if not tenant_ids:
        return {}
    valued, offsite = Q(value__isnull=False), Q(offsite_bytes__isnull=False)
    rows = (
        UsageSample.objects.filter(tenant_id__in=tenant_ids, day__gte=start, day__lte=end)
        .annotate(value=metric_value_expression(metric))
        .values("tenant_id")
        .annotate(
            rows_at_start=Count("pk", filter=Q(day=start)),
            last_row=Max("day"),
            samples=Count("value"),
            total=Sum("value"),
            peak=Max("value"),
            first=Min("day", filter=valued),
            last=Max("day", filter=valued),
            offsite_samples=Count("offsite_bytes"),
            offsite_total=Sum("offsite_bytes"),
            offsite_first=Min("day", filter=offsite),
            offsite_last=Max("day", filter=offsite),
        )
        .order_by()
    )
    return {row["tenant_id"]: row for row in rows}


def _is_run(row: dict[str, Any]) -> bool:
    """True when the grouped figures are enough: the values, and the offsite values, fall on
    consecutive days (or there are none), each run ending on the tenant's last sample, whose
    row then gives the value the days after it carry."""

    def run(samples: int, first: dt.date | None, last: dt.date | None) -> bool:
        return samples == 0 or (last == row["last_row"] and first is not None and (last - first).days + 1 == samples)

    return run(row["samples"], row["first"], row["last"]) and run(
        row["offsite_samples"], row["offsite_first"], row["offsite_last"]
    )


def _add_last_rows(runs: dict[int, dict[str, Any]], *, metric: str) -> None:
    """Add each tenant's last sample (its value, offsite value and counts) to its totals: one
    query per distinct last day (mostly one: the day of the latest collection)."""
    by_day: dict[dt.date, list[int]] = {}
    for pk, row in runs.items():
        if row:
            by_day.setdefault(row["last_row"], []).append(pk)
    for day, ids in by_day.items():
        for pk, value, offsite, snapshots, groups in (
            UsageSample.objects.filter(tenant_id__in=ids, day=day)
            .annotate(value=metric_value_expression(metric))
            .values_list("tenant_id", "value", "offsite_bytes", "snapshot_count", "group_count")
        ):
            runs[pk].update(last_value=value, last_offsite=offsite, snapshots=snapshots, groups=groups)


def _usage_from_totals(
    row: dict[str, Any], *, days: Sequence[dt.date], carry_in: int | None, offsite_carry_in: int | None
) -> _MonthUsage:
    # (PostgreSQL sums big integers as numeric: int() keeps the arithmetic exact and integral.)
    def lead(first: dt.date | None) -> int:
        return (first - days[0]).days if first is not None else len(days)

    summary = pricing.usage_summary_from_totals(
        days=len(days), lead=lead(row.get("first")), samples=row.get("samples", 0), total=int(row.get("total") or 0),
        peak=int(row.get("peak") or 0), last_value=row.get("last_value"), carry_in=carry_in,
    )  # fmt: skip
    offsite = None
    if row.get("offsite_samples") or offsite_carry_in is not None:
        offsite = pricing.usage_summary_from_totals(
            days=len(days), lead=lead(row.get("offsite_first")), samples=row.get("offsite_samples", 0),
            total=int(row.get("offsite_total") or 0), peak=0, last_value=row.get("last_offsite"),
            carry_in=offsite_carry_in,
        )  # fmt: skip
    return _MonthUsage(summary, offsite, snapshots=row.get("snapshots", 0), groups=row.get("groups", 0))


def _usage_from_rows(
    days: Sequence[dt.date], figures: dict[dt.date, _DayFigures], *, carry_in: int | None,
    offsite_carry_in: int | None,
) -> _MonthUsage:  # fmt: skip
    # Only the active days count; samples outside them are not billed.
    active = set(days)
    figures = {d: f for d, f in figures.items() if d in active}
    summary = pricing.usage_summary(days, {d: f.value for d, f in figures.items()}, carry_in=carry_in)
    offsite_values = {d: f.offsite for d, f in figures.items() if f.offsite is not None}
    offsite = None
    if offsite_values or offsite_carry_in is not None:
        offsite = pricing.usage_summary(days, offsite_values, carry_in=offsite_carry_in)
    last = figures[max(figures)] if figures else None
    return _MonthUsage(summary, offsite, snapshots=last.snapshots if last else 0, groups=last.groups if last else 0)


def _carry_ins(tenant_ids: Sequence[int], before: dt.date, *, metric: str) -> dict[int, tuple[int | None, int | None]]:
    """Per tenant, the last known billed value of ``metric`` and of the offsite copy before
    ``before`` (one query per batch)."""
    out: dict[int, tuple[int | None, int | None]] = {}
    earlier = UsageSample.objects.filter(tenant=OuterRef("pk"), day__lt=before).order_by("-day")
    value = Subquery(
        earlier.annotate(value=metric_value_expression(metric)).filter(value__isnull=False).values("value")[:1]
    )
    offsite = Subquery(earlier.filter(offsite_bytes__isnull=False).values("offsite_bytes")[:1])
    for i in range(0, len(tenant_ids), _BATCH):
        for pk, carried, offsite_carried in (
            Tenant.objects.filter(pk__in=tenant_ids[i : i + _BATCH])
            .annotate(carry_value=value, carry_offsite=offsite)
            .values_list("pk", "carry_value", "carry_offsite")
        ):
            out[pk] = (carried, offsite_carried)
    return out


def _figures_stream(
    start: dt.date, end: dt.date, tenant_ids: Sequence[int] | None = None, *, metric: str
) -> Iterator[tuple[int, dict[dt.date, _DayFigures]]]:
    """Yield (tenant_id, {day: figures}) in tenant id order, streaming the samples."""
    qs = UsageSample.objects.filter(day__gte=start, day__lte=end)
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    rows = (
        qs.annotate(value=metric_value_expression(metric))
        .order_by("tenant_id", "day")
        .values_list("tenant_id", "day", "value", "snapshot_count", "group_count", "offsite_bytes")
    )
    current: int | None = None
    bucket: dict[dt.date, _DayFigures] = {}
    for tenant_id, day, value, snaps, groups, offsite in rows.iterator(chunk_size=5000):
        if tenant_id != current:
            if current is not None:
                yield current, bucket
            current, bucket = tenant_id, {}
        bucket[day] = _DayFigures(value, snaps, groups, offsite)
    if current is not None:
        yield current, bucket
