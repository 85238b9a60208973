"""Billing reads: periods and totals, invoices, the last collection, usage series, export rows.

Every list here costs a fixed number of queries whatever the number of tenants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db.models import Count, Prefetch, QuerySet, Sum
from django.utils import timezone

from billing import pricing
from billing.models import (
    BillingPeriod,
    CreditNote,
    Invoice,
    InvoiceLine,
    MeteringGap,
    MeteringHostResult,
    MeteringRun,
    UsageSample,
)
from plans.models import Plan

# --- periods -----------------------------------------------------------------------------


@dataclass
class PeriodSummary:
    label: str
    start: dt.date
    end: dt.date
    status: str
    closed_at: dt.datetime | None
    invoices: int = 0
    credit_notes: int = 0
    gaps: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    skipped_no_plan: list[str] = field(default_factory=list)

    @property
    def is_closed(self) -> bool:
        return self.status == BillingPeriod.Status.CLOSED


def period_list(*, limit: int = 24) -> list[PeriodSummary]:
    """Closed and open periods, newest first, with invoice counts and totals per currency.

    The previous month is listed even before anything exists for it (so it can be closed).
    Three queries whatever the number of invoices.
    """
    rows = list(BillingPeriod.objects.order_by("-start")[:limit])
    summaries = {
        r.start: PeriodSummary(
            label=r.label,
            start=r.start,
            end=r.end,
            status=r.status,
            closed_at=r.closed_at,
            skipped_no_plan=list(r.notes.get("skipped_no_plan", [])),
        )
        for r in rows
    }
    by_id = {r.pk: summaries[r.start] for r in rows}
    totals = (
        Invoice.objects.filter(period_id__in=by_id, status=Invoice.Status.ISSUED)
        .values("period_id", "currency")
        .annotate(total=Sum("total"), n=Count("id"), gaps=Sum("gaps"))
        .order_by()
    )
    for t in totals:
        summary = by_id[t["period_id"]]
        summary.totals[t["currency"]] = pricing.round_money(t["total"])
        summary.invoices += t["n"]
        summary.gaps += t["gaps"] or 0
    credits = CreditNote.objects.filter(period_id__in=by_id).values("period_id").annotate(n=Count("id")).order_by()
    for c in credits:
        by_id[c["period_id"]].credit_notes = c["n"]
    previous = pricing.month_bounds(pricing.previous_month(timezone.localdate()))
    if previous[0] not in summaries:
        summaries[previous[0]] = PeriodSummary(
            label=f"{previous[0]:%Y-%m}", start=previous[0], end=previous[1], status="open", closed_at=None
        )
    return sorted(summaries.values(), key=lambda s: s.start, reverse=True)


def period_get(*, period: str) -> BillingPeriod | None:
    start, _ = pricing.month_bounds(period)
    return BillingPeriod.objects.filter(start=start).first()


def period_totals(*, period: BillingPeriod) -> dict[str, Decimal]:
    """Issued (not credited) totals per currency."""
    rows = (
        Invoice.objects.filter(period=period, status=Invoice.Status.ISSUED)
        .values("currency")
        .annotate(total=Sum("total"))
        .order_by("currency")
    )
    # SQLite sums decimals without their scale: put the cents back.
    return {r["currency"]: pricing.round_money(r["total"]) for r in rows}


def period_invoices(*, period: BillingPeriod, include_credited: bool = True) -> QuerySet[Invoice]:
    """Invoices of a period by tenant; every figure shown is on the invoice row itself."""
    qs = Invoice.objects.filter(period=period).select_related("credit_note", "replaces")
    if not include_credited:
        qs = qs.filter(status=Invoice.Status.ISSUED)
    return qs.order_by("tenant_slug", "issued_at", "id")


# --- invoices ----------------------------------------------------------------------------


def invoice_get(*, number: str) -> Invoice | None:
    return (
        Invoice.objects.select_related("period", "tenant", "credit_note", "replaces", "issued_by")
        .prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")),
        )
        .filter(number=number)
        .first()
    )


def invoice_replacement(*, invoice: Invoice) -> Invoice | None:
    return Invoice.objects.filter(replaces=invoice).only("number", "total", "currency").first()


def tenant_invoices(*, tenant_id: int, limit: int = 24) -> list[Invoice]:
    """A tenant's invoices, newest period first, with their credit notes (two queries)."""
    return list(
        Invoice.objects.filter(tenant_id=tenant_id)
        .select_related("period", "credit_note")
        .order_by("-period__start", "-issued_at")[:limit]
    )


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.annotate(tenant_count=Count("tenants")).order_by("-is_active", "name")


# --- metering ----------------------------------------------------------------------------


@dataclass
class CollectionStatus:
    run: MeteringRun | None
    results: list[MeteringHostResult]
    gaps: list[MeteringGap]
    gap_total: int

    @property
    def failed_results(self) -> list[MeteringHostResult]:
        return [r for r in self.results if r.status in ("failed", "partial")]


def last_collection(*, gap_limit: int = 50) -> CollectionStatus:
    """The latest metering run with its per-host results and its gaps (four queries)."""
    run = MeteringRun.objects.first()
    if run is None:
        return CollectionStatus(None, [], [], 0)
    results = list(run.host_results.select_related("host").order_by("host__name", "first_tenant_id"))
    gaps_qs = MeteringGap.objects.filter(run=run)
    gaps = list(gaps_qs.select_related("tenant").order_by("tenant__slug")[:gap_limit])
    return CollectionStatus(run, results, gaps, gaps_qs.count())


def metering_run_list(*, limit: int = 30) -> list[MeteringRun]:
    return list(MeteringRun.objects.order_by("-started_at")[:limit])


# --- usage series and chart -----------------------------------------------------------

CHART_W = 720
CHART_H = 240
PAD_L = 64
PAD_R = 12
PAD_T = 12
PAD_B = 28
METRICS = (
    ("logical", "Logical (all snapshots)", "#1f6feb"),
    ("latest", "Latest per group", "#1a7f37"),
    ("physical", "Physical estimate (apportioned)", "#9a6700"),
)


@dataclass(frozen=True)
class UsagePoint:
    day: dt.date
    logical: int | None
    latest: int | None
    physical: int | None
    snapshots: int | None
    # False before the tenant's first sample ever: nothing was measured yet, so no gap.
    measured: bool = True

    @property
    def sampled(self) -> bool:
        return self.logical is not None

    @property
    def gap(self) -> bool:
        return self.measured and not self.sampled


@dataclass
class ChartLine:
    key: str
    label: str
    color: str
    segments: list[str]


@dataclass
class UsageSeries:
    """A tenant's daily samples over ``days`` days, with the geometry of its SVG chart.

    Days without a sample are ``None`` (the line breaks there and a gap mark is drawn);
    nothing is interpolated.
    """

    tenant_id: int
    points: list[UsagePoint]
    width: int = CHART_W
    height: int = CHART_H

    @property
    def first_day(self) -> dt.date:
        return self.points[0].day

    @property
    def last_day(self) -> dt.date:
        return self.points[-1].day

    @property
    def sampled_days(self) -> int:
        return sum(1 for p in self.points if p.sampled)

    @property
    def gap_days(self) -> int:
        return sum(1 for p in self.points if p.gap)

    @property
    def latest(self) -> UsagePoint | None:
        for point in reversed(self.points):
            if point.sampled:
                return point
        return None

    @property
    def has_physical(self) -> bool:
        return any(p.physical is not None for p in self.points)

    @cached_property
    def y_max_gib(self) -> Decimal:
        # Cached: every plotted point scales by it (once per point made this quadratic).
        peak = max(
            (v for p in self.points for v in (p.logical, p.latest, p.physical) if v is not None),
            default=0,
        )
        return _nice_ceiling(Decimal(peak) / pricing.GIB)

    def _x(self, index: int) -> float:
        span = max(1, len(self.points) - 1)
        return PAD_L + (self.width - PAD_L - PAD_R) * index / span

    def _y(self, value: int) -> float:
        top = self.y_max_gib or Decimal(1)
        frac = float(Decimal(value) / pricing.GIB / top)
        return PAD_T + (self.height - PAD_T - PAD_B) * (1 - frac)

    @property
    def plot_left(self) -> int:
        return PAD_L

    @property
    def plot_right(self) -> int:
        return self.width - PAD_R

    @property
    def plot_bottom(self) -> int:
        return self.height - PAD_B

    @property
    def plot_top(self) -> int:
        return PAD_T

    @property
    def lines(self) -> list[ChartLine]:
        out = []
        for key, label, color in METRICS:
            segments: list[str] = []
            current: list[str] = []
            for i, point in enumerate(self.points):
                value = getattr(point, key)
                if value is None:
                    if current:
                        segments.append(" ".join(current))
                        current = []
                    continue
                current.append(f"{self._x(i):.1f},{self._y(value):.1f}")
            if current:
                segments.append(" ".join(current))
            # A single point draws nothing as a polyline: widen it to a short dash.
            segments = [s if " " in s else _dash(s) for s in segments]
            out.append(ChartLine(key, label, color, segments))
        return out

    @property
    def gap_marks(self) -> list[float]:
        return [round(self._x(i), 1) for i, p in enumerate(self.points) if p.gap]

    @property
    def y_ticks(self) -> list[tuple[float, str]]:
        top = self.y_max_gib
        ticks = []
        for i in range(5):
            value = top * i / 4
            y = PAD_T + (self.height - PAD_T - PAD_B) * (1 - i / 4)
            ticks.append((round(y, 1), f"{value.normalize():f} GiB" if value else "0"))
        return ticks

    @property
    def x_ticks(self) -> list[tuple[float, str, str]]:
        """(x, label, text-anchor): the first label starts at the axis, the last ends at it."""
        n = len(self.points)
        picks = sorted({0, n // 3, 2 * n // 3, n - 1})
        anchors = {0: "start", n - 1: "end"}
        return [(round(self._x(i), 1), f"{self.points[i].day:%Y-%m-%d}", anchors.get(i, "middle")) for i in picks]


def _dash(point: str) -> str:
    x, y = (float(v) for v in point.split(","))
    return f"{x - 4:.1f},{y:.1f} {x + 4:.1f},{y:.1f}"


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1/2/5 x 10^n at or above ``value`` (at least 1 GiB)."""
    if value <= 1:
        return Decimal(1)
    exponent = len(str(int(value))) - 1
    for step in (1, 2, 5, 10):
        candidate = Decimal(step) * Decimal(10) ** exponent
        if candidate >= value:
            return candidate
    return Decimal(10) ** (exponent + 1)


def usage_series(tenant_id: int, days: int = 90, *, today: dt.date | None = None) -> UsageSeries:
    """The last ``days`` days of a tenant's samples (two queries), oldest first. Days before
    the tenant's first sample ever are unmeasured, not gaps."""
    today = today or timezone.localdate()
    first_day = (
        UsageSample.objects.filter(tenant_id=tenant_id).order_by("day").values_list("day", flat=True).first()
    )
    start = today - dt.timedelta(days=days - 1)
    rows = {
        row[0]: row
        for row in UsageSample.objects.filter(tenant_id=tenant_id, day__gte=start, day__lte=today).values_list(
            "day", "logical_bytes", "latest_bytes", "physical_estimate_bytes", "snapshot_count"
        )
    }
    points = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        row = rows.get(day)
        points.append(
            UsagePoint(day, row[1], row[2], row[3], row[4])
            if row
            else UsagePoint(day, None, None, None, None, measured=first_day is not None and day >= first_day)
        )
    return UsageSeries(tenant_id=tenant_id, points=points)


# --- export --------------------------------------------------------------------------------

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
        yield (*row[:4], month, *row[4:6], export_metric(row[6]), *row[7:])


def export_dicts(*, period: BillingPeriod) -> Iterator[dict[str, Any]]:
    for row in export_rows(period=period):
        yield dict(zip(EXPORT_COLUMNS, row, strict=True))


def metering_run_pending_chunks(*, run: MeteringRun) -> list[tuple[int, list[int]]]:
    """(host id, tenant ids) of each chunk of a metering run still to be measured."""
    return list(
        MeteringHostResult.objects.filter(run=run, status=MeteringHostResult.Status.PENDING).values_list(
            "host_id", "tenant_ids"
        )
    )


def metering_run_exists(*, run_id: int) -> bool:
    return MeteringRun.objects.filter(pk=run_id).exists()
