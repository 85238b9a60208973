"""The staff overview: every tile in a fixed number of queries, whatever the number of tenants.

Live on every request (cheap, and what a person acts on): datastore fill, runs needing a
person, open alerts, quota states, stale offsite copies, drift, last month's invoices.

Drawn from the usage samples (hundreds of thousands of rows at 10,000 tenants): the
datastores' 30-day trend, this month's projection and the fastest-growing tenants. These are
memoised under a digest of their inputs (``usage_inputs_key``: newest sample, newest metering
run, tenants, plans), so they are recomputed as soon as anything they rest on changes and
never shown stale; in between, a page view reads four small aggregates instead of the samples.

Steps of ``overview`` (queries in brackets; a memo miss adds the grouped sample reads):

1. the inputs key [4];
2. datastores with their host and fill level [1]; their trend [memo: 1];
3. runs that failed or are stuck [2]; alerts by severity, quota states, stale offsite
   copies [3]; drift: tenants and hosts [2]; tenants by status [1];
4. for those who see money: this month [memo: 3] and last month's invoices [2];
5. the ten tenants that grew most in 30 days [memo: 3].
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Sum
from django.utils import timezone

from alerts import selectors as alert_selectors
from alerts.models import QuotaState
from billing import pricing
from billing.models import MeteringRun, UsageSample
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

logger = logging.getLogger(__name__)

GIB = 2**30
CENT = Decimal("0.01")
MEMO_SECONDS = 86_400


# --- figures drawn from the usage samples: recomputed whenever their inputs change ---------


def usage_inputs_key() -> str:
    """A digest of everything the sample-derived tiles depend on [4 small queries]: the newest
    sample row, the newest metering run (samples are written and re-collected by runs; its
    status and end change when it finishes), the tenants (a plan change touches
    ``updated_at``) and the plans. Any change gives a new key, so a memoised figure is never
    older than the data it was drawn from; it only saves reading the same samples again."""
    newest_sample = UsageSample.objects.aggregate(n=Max("id"))["n"]
    run = MeteringRun.objects.order_by("-id").values_list("id", "status", "finished_at").first()
    tenants = Tenant.objects.aggregate(n=Count("id"), changed=Max("updated_at"))
    plans = Plan.objects.aggregate(n=Count("id"), changed=Max("updated_at"))
    raw = repr((newest_sample, run, tenants["n"], tenants["changed"], plans["n"], plans["changed"]))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _memo[T](name: str, today: dt.date, compute: Callable[[], T], key: str | None) -> T:
    """``compute()``, memoised under its inputs' key (``usage_inputs_key``) and the day. The
    memo only saves work: when the cache cannot be reached the figure is computed anyway."""
    cache_key = f"overview:{name}:{today.isoformat()}:{key or usage_inputs_key()}"
    try:
        found = cache.get(cache_key)
    except Exception as exc:  # any cache backend error (Redis down): compute, do not fail the page
        logger.warning("overview memo unavailable (%s): computing %s", type(exc).__name__, name)
        return compute()
    if found is not None:
        return found
    value = compute()
    try:
        cache.set(cache_key, value, MEMO_SECONDS)
    except Exception as exc:  # as above
        logger.warning("overview memo unavailable (%s): not kept", type(exc).__name__)
    return value


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


Series = dict[tuple[str, str], dict[dt.date, int]]


def _datastore_history(today: dt.date) -> tuple[Series, Series]:
    """Per (host, datastore) and day of the last 30: the GC disk bytes and the summed logical
    bytes of its tenants' samples (one grouped query over the samples)."""
    history = (
        UsageSample.objects.filter(day__gte=today - dt.timedelta(days=GROWTH_DAYS), day__lte=today)
        .values("host_name", "datastore", "day")
        .annotate(disk=Max("gc_disk_bytes"), logical=Sum("logical_bytes"))
        .order_by()
    )
    disk: Series = defaultdict(dict)
    logical: Series = defaultdict(dict)
    for row in history:
        key = (row["host_name"], row["datastore"])
        if row["disk"] is not None:
            disk[key][row["day"]] = row["disk"]
        if row["logical"] is not None:
            logical[key][row["day"]] = row["logical"]
    return dict(disk), dict(logical)


def datastore_fill(*, today: dt.date | None = None, inputs_key: str | None = None) -> list[DatastoreFill]:
    """Every datastore, fullest first, with a days-until-full forecast [1 query + the memo].

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
    disk, logical = _memo("datastore-history", today, lambda: _datastore_history(today), inputs_key)
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


def _month_projection(today: dt.date) -> tuple[int, list[CurrencyMonth]]:
    """Days measured this month, and per currency the tenants, billed GiB-days and projected
    invoice total (one grouped query per tenant over this month's samples, priced here)."""
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
    return days, list(months.values())


def month_so_far(*, today: dt.date | None = None, inputs_key: str | None = None) -> Month:
    """Billed GiB-days and the projected invoice total per currency, this month so far [2
    queries + the memo].

    The projection prices each tenant's average billed figure of the days measured so far
    with its plan (``billing.pricing.price_lines``, the rule the close uses), as if the rest
    of the month stayed at that average; missing days are not carried forward, so it is a
    projection, not a draft invoice. Last month: the issued (not credited) invoice totals."""
    today = today or timezone.localdate()
    days, projected = _memo("month", today, lambda: _month_projection(today), inputs_key)
    months = {entry.currency: entry for entry in projected}
    last_period = pricing.previous_month(today)
    last = period_selectors.period_get(period=last_period)
    for currency, total in (period_selectors.period_totals(period=last) if last else {}).items():
        months.setdefault(currency, CurrencyMonth(currency)).last_month = total
    for entry in months.values():
        entry.gib_days = entry.gib_days.quantize(CENT, rounding=ROUND_HALF_UP)
    return Month(period=f"{today:%Y-%m}", last_period=last_period, days_measured=days,
                 currencies=sorted(months.values(), key=lambda m: m.currency))  # fmt: skip


# --- growth ------------------------------------------------------------------------------


def top_growth(*, limit: int = 10, today: dt.date | None = None, inputs_key: str | None = None) -> list[BoardRow]:
    """The tenants that grew most in 30 days (billed metric), largest first [the memo]."""
    today = today or timezone.localdate()

    def compute() -> list[BoardRow]:
        qs = board_rows(BoardFilters(sort="-growth"), today=today)
        qs = qs.filter(status__in=[Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED])
        rows = attach_figures(rows_from(qs[:limit]), today=today)
        return [t for t in rows if t.growth_bytes]

    return _memo(f"growth-{limit}", today, compute, inputs_key)


def overview(*, money: bool, operations: bool, today: dt.date | None = None) -> dict[str, Any]:
    """Everything the overview page shows for a user who sees ``operations`` and/or ``money``."""
    context: dict[str, Any] = {"show_money": money, "show_operations": operations}
    key = usage_inputs_key()
    if operations:
        context.update(
            datastores=datastore_fill(today=today, inputs_key=key),
            attention=attention(),
            growth=top_growth(today=today, inputs_key=key),
            tenant_counts=tenant_selectors.tenant_status_counts(),
        )
    if money:
        context["month"] = month_so_far(today=today, inputs_key=key)
    return context

