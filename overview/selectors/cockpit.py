"""The staff overview: every tile in a fixed number of aggregate queries.

Nothing here is cached: each figure is read when the page is opened, so what the page shows
is what the database holds. The number of queries does not depend on the number of tenants
(tests/overview/test_overview.py holds it); the rows they return are bounded by the number
of datastores, plans, currencies and the ten tenants shown, except the month's projection,
which reads one aggregated row per tenant measured this month.

Steps of ``overview`` (queries in brackets):

1. datastores with their host, fill level and the 30-day trend of their disk usage [2];
2. onboarding and repair runs that failed or are stuck [2];
3. open alerts by severity [1]; quota states [1]; stale offsite copies [1]; drift [2];
4. for those who see money: this month so far and last month's invoices [4];
5. the ten tenants that grew most in 30 days [5].
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Max, Sum
from django.utils import timezone

from alerts import selectors as alert_selectors
from alerts.models import QuotaState
from billing import pricing
from billing.models import UsageSample
from billing.selectors import periods as period_selectors
from offsite.models import TenantOffsite
from overview.forecast import Forecast, forecast
from overview.selectors.tenant_board import (
    GROWTH_DAYS,
    BoardFilters,
    BoardRow,
    attach_figures,
    billed_value,
    board_rows,
    rows_from,
)
from plans.models import Plan
from tenants import selectors as tenant_selectors
from tenants.models import Datastore, OnboardingRun, PbsHost, Tenant

GIB = 2**30
CENT = Decimal("0.01")


# --- datastores ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DatastoreFill:
    """One datastore: how full it is and when, at its recent pace, it is full."""

    datastore: Datastore
    fill_percent: int | None
    free_bytes: int | None
    forecast: Forecast
    basis: str  # what the trend was drawn through: "disk" (GC disk bytes) or "logical" (scaled)

    @property
    def host(self) -> PbsHost:
        return self.datastore.host


def _free_bytes(store: Datastore) -> int | None:
    if store.avail_bytes is not None:
        return store.avail_bytes
    if store.total_bytes is not None and store.used_bytes is not None:
        return store.total_bytes - store.used_bytes
    return None


def datastore_fill(*, today: dt.date | None = None) -> list[DatastoreFill]:
    """Every datastore, fullest first, with a days-until-full forecast [2 queries].

    The trend is drawn through the datastore's daily disk usage of the last 30 days: the GC
    disk bytes metering stores with each sample. Where no GC figure was ever read, it is drawn
    through the tenants' summed logical bytes, scaled to disk by the datastore's used bytes
    over its newest logical sum (dedup keeps that ratio roughly constant)."""
    today = today or timezone.localdate()
    stores = list(
        Datastore.objects.select_related("host").only(
            "id", "name", "enabled", "total_bytes", "used_bytes", "avail_bytes", "last_seen_at",
            "host__id", "host__name", "host__enabled", "host__reachable",
        )
    )  # fmt: skip
    history = (
        UsageSample.objects.filter(day__gte=today - dt.timedelta(days=GROWTH_DAYS), day__lte=today)
        .values("host_name", "datastore", "day")
        .annotate(disk=Max("gc_disk_bytes"), logical=Sum("logical_bytes"))
        .order_by()
    )
    disk: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(dict)
    logical: dict[tuple[str, str], dict[dt.date, int]] = defaultdict(dict)
    for row in history:
        key = (row["host_name"], row["datastore"])
        if row["disk"] is not None:
            disk[key][row["day"]] = row["disk"]
        if row["logical"] is not None:
            logical[key][row["day"]] = row["logical"]
    out = []
    for store in stores:
        key = (store.host.name, store.name)
        free = _free_bytes(store)
        series, basis = disk.get(key, {}), "disk"
        if len(series) < 2 and len(logical.get(key, {})) >= 2 and store.used_bytes:
            sums = logical[key]
            newest = sums[max(sums)]
            if newest > 0:
                ratio = store.used_bytes / newest
                series, basis = {day: int(value * ratio) for day, value in sums.items()}, "logical"
        fill = None
        if store.total_bytes and store.used_bytes is not None:
            fill = min(100, int(store.used_bytes * 100 // store.total_bytes))
        out.append(DatastoreFill(store, fill, free, forecast(series, free_bytes=free), basis))
    # Fullest first by time: the soonest full, then by fill level.
    out.sort(key=lambda d: (d.forecast.days_until_full is None, d.forecast.days_until_full or 0,
                            -(d.fill_percent or 0)))  # fmt: skip
    return out


# --- what needs a person -------------------------------------------------------------------


@dataclass(frozen=True)
class Attention:
    """Counts for the tiles that say what needs a person."""

    runs_count: int
    runs: list[OnboardingRun]
    alerts: dict[str, int]
    quota: dict[str, int]
    offsite_stale_tenants: int
    drift_tenants: int
    drift_hosts: list[PbsHost]

    @property
    def open_alerts(self) -> int:
        return sum(self.alerts.values())

    @property
    def over_quota(self) -> int:
        return self.quota.get(QuotaState.State.OVER, 0) + self.quota.get(QuotaState.State.ENFORCED, 0)


def attention() -> Attention:
    """Runs, alerts, quotas, offsite, drift [7 queries]."""
    runs_count, runs = tenant_selectors.onboarding_runs_needing_attention(limit=8)
    quota_rows = QuotaState.objects.values("state").annotate(n=Count("id")).order_by()
    drift_hosts = list(
        PbsHost.objects.filter(drift_checked_at__isnull=False)
        .exclude(drift_findings=[])
        .only("id", "name", "drift_findings")
    )
    return Attention(
        runs_count=runs_count,
        runs=runs,
        alerts=alert_selectors.open_alert_counts(),
        quota={row["state"]: row["n"] for row in quota_rows},
        offsite_stale_tenants=TenantOffsite.objects.filter(stale=True).values("tenant_id").distinct().count(),
        drift_tenants=tenant_selectors.tenant_list(drift_found=True).count(),
        drift_hosts=drift_hosts,
    )


# --- money -------------------------------------------------------------------------------


@dataclass
class CurrencyMonth:
    """This month so far in one currency, against last month's issued invoices."""

    currency: str
    tenants: int = 0
    gib_days: Decimal = Decimal(0)
    projected: Decimal = Decimal(0)
    last_month: Decimal | None = None

    @property
    def change(self) -> Decimal | None:
        return None if self.last_month is None else self.projected - self.last_month

    @property
    def change_percent(self) -> Decimal | None:
        if not self.last_month:
            return None
        return (self.change * 100 / self.last_month).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass
class Month:
    period: str
    last_period: str
    days_measured: int
    currencies: list[CurrencyMonth] = field(default_factory=list)


def month_so_far(*, today: dt.date | None = None) -> Month:
    """Billed GiB-days and the projected invoice total per currency, this month so far [4 queries].

    The projection prices each tenant's average billed figure of the days measured so far
    with its plan (``billing.pricing.price_lines``, the rule the close uses), as if the rest
    of the month stayed at that average; missing days are not carried forward, so it is a
    projection, not a draft invoice. Last month: the issued (not credited) invoice totals."""
    today = today or timezone.localdate()
    period = f"{today:%Y-%m}"
    start = today.replace(day=1)
    rows = (
        UsageSample.objects.filter(day__gte=start, day__lte=today, tenant__plan__isnull=False)
        .values("tenant_id", "tenant__plan_id")
        .annotate(
            byte_days=Sum(billed_value()), samples=Count("id"),
            offsite_byte_days=Sum("offsite_bytes"), offsite_samples=Count("offsite_bytes"),
        )
        .order_by()
    )  # fmt: skip
    plans = {plan.pk: plan for plan in Plan.objects.all()}
    months: dict[str, CurrencyMonth] = {}
    days = UsageSample.objects.filter(day__gte=start, day__lte=today).values("day").distinct().count()
    for row in rows:
        plan = plans[row["tenant__plan_id"]]
        entry = months.setdefault(plan.currency, CurrencyMonth(plan.currency))
        byte_days = row["byte_days"] or 0
        entry.tenants += 1
        entry.gib_days += Decimal(byte_days) / GIB
        billed_gib = (Decimal(byte_days) / row["samples"] / GIB).quantize(CENT, rounding=ROUND_HALF_UP)
        offsite_gib = None
        if plan.offsite_price_per_gib is not None and row["offsite_samples"]:
            offsite = Decimal(row["offsite_byte_days"]) / row["offsite_samples"] / GIB
            offsite_gib = offsite.quantize(CENT, rounding=ROUND_HALF_UP)
        entry.projected += pricing.price_lines(
            billed_gib=billed_gib, metric=plan.metric, included_gib=plan.included_gib,
            unit_price=plan.price_per_gib, base_fee=plan.base_fee, minimum_charge=plan.minimum_charge,
            currency=plan.currency, offsite_gib=offsite_gib, offsite_unit_price=plan.offsite_price_per_gib,
        ).total  # fmt: skip
    last_period = pricing.previous_month(today)
    last = period_selectors.period_get(period=last_period)
    for currency, total in (period_selectors.period_totals(period=last) if last else {}).items():
        months.setdefault(currency, CurrencyMonth(currency)).last_month = total
    for entry in months.values():
        entry.gib_days = entry.gib_days.quantize(CENT, rounding=ROUND_HALF_UP)
    return Month(period=period, last_period=last_period, days_measured=days,
                 currencies=sorted(months.values(), key=lambda m: m.currency))  # fmt: skip


# --- growth ------------------------------------------------------------------------------


def top_growth(*, limit: int = 10, today: dt.date | None = None) -> list[BoardRow]:
    """The tenants that grew most in 30 days (billed metric), largest first [5 queries]."""
    qs = board_rows(BoardFilters(sort="-growth"), today=today)
    qs = qs.filter(status__in=[Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED])
    rows = attach_figures(rows_from(qs[:limit]), today=today)
    return [t for t in rows if t.growth_bytes]


def overview(*, money: bool, operations: bool, today: dt.date | None = None) -> dict[str, Any]:
    """Everything the overview page shows for a user who sees ``operations`` and/or ``money``."""
    context: dict[str, Any] = {"show_money": money, "show_operations": operations}
    if operations:
        context.update(
            datastores=datastore_fill(today=today),
            attention=attention(),
            growth=top_growth(today=today),
            tenant_counts=tenant_selectors.tenant_status_counts(),
        )
    if money:
        context["month"] = month_so_far(today=today)
    return context

