"""Demo history: 90 days of daily usage behind the demo tenants and two closed months.

A fresh `make run` has one measurement per tenant (today's, from the simulators). To show
charts, growth, invoices and a correction at once, the demo writes the days before it:

1. the demo tenants' activation is moved back to the first day of the history, as if they
   had been customers for three months;
2. one ``UsageSample`` per tenant and earlier day, derived from today's real measurement
   with a steady growth per tenant (one grows fast, one hardly at all), a weekly prune dip
   and a few days left out as ``MeteringGap`` rows (an unreachable host), so every figure
   keeps the proportions PBS gave (latest <= logical, the physical estimate at the
   datastore's deduplication ratio) and each datastore's GC figures grow with its tenants;
3. the last two months are closed through the real monthly close, and one invoice is
   corrected through the real correction service (a credit note and a new invoice).

Days that already have a sample or a gap are left alone and a closed month stays closed,
so running it again adds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing import pricing
from billing.models import BillingPeriod, CreditNote, Invoice, MeteringGap, UsageSample
from billing.services.base import BillingError
from billing.services.close import billing_period_close
from billing.services.corrections import invoice_correct
from pbssim.demo import HOSTS as SIM_HOSTS
from plans.models import Plan
from tenants.models import Tenant

HISTORY_DAYS = 90
DEMO_GAP_REASON = "demo data: the host did not answer that night (a simulated outage)"
DEMO_CORRECTION_REASON = (
    "Demo data: the customer moved to the {plan} plan on the 1st of the month; re-billed on that plan."
)
# Daily growth per demo tenant: umbrella grows fast, hooli (the one over its quota) steadily,
# vandelay not at all.
GROWTH_PER_DAY = {"acme": 0.0035, "globex": 0.006, "hooli": 0.009, "initech": 0.0015, "umbrella": 0.015}
# The simulators' customers: the only tenants whose history the demo writes.
DEMO_SLUGS = tuple(sorted(tenant.slug for host in SIM_HOSTS for tenant in host.tenants))


@dataclass
class HistoryResult:
    samples: int = 0
    gaps: int = 0
    closed: list[str] = field(default_factory=list)
    invoices: int = 0
    credit_note: str = ""
    skipped: list[str] = field(default_factory=list)


def history_start(today: dt.date) -> dt.date:
    """The first day of the history: 90 days back, and never inside the older closed month."""
    first_of_month = today.replace(day=1)
    two_months_back = (first_of_month - dt.timedelta(days=1)).replace(day=1)
    two_months_back = (two_months_back - dt.timedelta(days=1)).replace(day=1)
    return min(today - dt.timedelta(days=HISTORY_DAYS), two_months_back)


def closed_months(today: dt.date) -> list[str]:
    """The two whole months before this one, oldest first ("2026-10", "2026-11")."""
    last = today.replace(day=1) - dt.timedelta(days=1)
    before = last.replace(day=1) - dt.timedelta(days=1)
    return [f"{before:%Y-%m}", f"{last:%Y-%m}"]


def gap_days(index: int, start: dt.date, today: dt.date) -> set[dt.date]:
    """A few nights without a measurement, different for each tenant (never the first day,
    so every month has a figure to carry)."""
    days = (today - start).days
    return {start + dt.timedelta(days=d) for d in range(1, days) if (d + 11 * index) % 31 == 0}


def _scale(value: int | None, factor: float) -> int | None:
    return None if value is None else int(value * factor)


@dataclass
class _Plan:
    """One tenant's history to write: today's measurement and each earlier day's factor."""

    tenant: Tenant
    anchor: UsageSample
    factors: dict[dt.date, float]
    gaps: set[dt.date]
    have: set[dt.date]


def _plan_for(tenant: Tenant, index: int, start: dt.date, today: dt.date) -> _Plan | None:
    anchor = UsageSample.objects.filter(tenant=tenant, day__lte=today).order_by("-day").first()
    if anchor is None:
        return None
    growth = GROWTH_PER_DAY.get(tenant.slug, 0.0)
    have = set(UsageSample.objects.filter(tenant=tenant, day__gte=start).values_list("day", flat=True))
    have |= set(MeteringGap.objects.filter(tenant=tenant, day__gte=start).values_list("day", flat=True))
    factors = {}
    for age in range(1, (anchor.day - start).days + 1):
        day = anchor.day - dt.timedelta(days=age)
        # Steady growth towards today's figure, and a small dip after each weekly prune.
        factors[day] = (1 + growth) ** -age * (0.985 if day.weekday() == 6 else 1.0)
    return _Plan(tenant, anchor, factors, gap_days(index, start, anchor.day), have)


def _datastore_shrink(plans: list[_Plan]) -> dict[tuple[str, str], dict[dt.date, int]]:
    """Per datastore and day, how many logical bytes its demo tenants held less than today:
    the datastore's GC figures of that day are today's minus that (same deduplication ratio),
    so its disk usage has the trend the overview forecasts from."""
    shrink: dict[tuple[str, str], dict[dt.date, int]] = {}
    for plan in plans:
        per_day = shrink.setdefault((plan.anchor.host_name, plan.anchor.datastore), {})
        for day, factor in plan.factors.items():
            per_day[day] = per_day.get(day, 0) + plan.anchor.logical_bytes - int(plan.anchor.logical_bytes * factor)
    return shrink


def _gc_figures(anchor: UsageSample, shrink: int) -> tuple[int | None, int | None]:
    index, disk = anchor.gc_index_data_bytes, anchor.gc_disk_bytes
    if not index or disk is None:
        return index, disk
    day_index = max(index - shrink, 1)
    return day_index, int(disk * day_index / index)


def _write(plan: _Plan, shrink: dict[dt.date, int]) -> tuple[int, int]:
    anchor, tenant = plan.anchor, plan.tenant
    samples, gaps = [], []
    for day, factor in sorted(plan.factors.items()):
        if day in plan.have:
            continue
        if day in plan.gaps:
            gaps.append(MeteringGap(tenant=tenant, day=day, host_name=anchor.host_name, reason=DEMO_GAP_REASON))
            continue
        taken = timezone.make_aware(dt.datetime.combine(day, dt.time(2, 30)))
        gc_index, gc_disk = _gc_figures(anchor, shrink.get(day, 0))
        samples.append(
            UsageSample(
                tenant=tenant, day=day, taken_at=taken, host_name=anchor.host_name,
                datastore=anchor.datastore, namespace=anchor.namespace,
                logical_bytes=_scale(anchor.logical_bytes, factor),
                latest_bytes=_scale(anchor.latest_bytes, factor),
                physical_estimate_bytes=_scale(anchor.physical_estimate_bytes, factor),
                snapshot_count=anchor.snapshot_count, group_count=anchor.group_count,
                namespace_count=anchor.namespace_count,
                newest_backup_at=taken - dt.timedelta(hours=1), oldest_backup_at=anchor.oldest_backup_at,
                gc_index_data_bytes=gc_index, gc_disk_bytes=gc_disk, gc_source=anchor.gc_source,
            )
        )
    UsageSample.objects.bulk_create(samples, batch_size=500, ignore_conflicts=True)
    MeteringGap.objects.bulk_create(gaps, batch_size=500, ignore_conflicts=True)
    return len(samples), len(gaps)


def demo_tenants() -> list[Tenant]:
    return list(
        Tenant.objects.filter(slug__in=DEMO_SLUGS, status=Tenant.Status.ACTIVE, plan__isnull=False)
        .select_related("plan", "host", "datastore")
        .order_by("slug")
    )


def demo_usage_history_ensure(*, today: dt.date | None = None) -> HistoryResult:
    """Steps 1 and 2: activation moved back, the daily samples and gaps written."""
    today = today or timezone.localdate()
    start = history_start(today)
    result = HistoryResult()
    activated = timezone.make_aware(dt.datetime.combine(start, dt.time(9, 0)))
    plans = []
    for tenant in demo_tenants():
        # A demo customer "since three months"; created_at follows so nothing predates it.
        Tenant.objects.filter(pk=tenant.pk, activated_at__gt=activated).update(
            activated_at=activated, created_at=activated - dt.timedelta(days=1)
        )
        plan = _plan_for(tenant, DEMO_SLUGS.index(tenant.slug), start, today)
        if plan is None:
            result.skipped.append(tenant.slug)
        else:
            plans.append(plan)
    shrink = _datastore_shrink(plans)
    with transaction.atomic():
        for plan in plans:
            samples, gaps = _write(plan, shrink[(plan.anchor.host_name, plan.anchor.datastore)])
            result.samples += samples
            result.gaps += gaps
    return result


def demo_months_close(*, today: dt.date | None = None, result: HistoryResult | None = None) -> HistoryResult:
    """Step 3: the two previous months closed (idempotent), one invoice corrected once."""
    today = today or timezone.localdate()
    result = result or HistoryResult()
    for period in closed_months(today):
        closed = billing_period_close(period=period, today=today)
        result.invoices += closed.created
        if not closed.already_closed:
            result.closed.append(period)
    result.credit_note = _correction_ensure(closed_months(today)[0])
    return result


def _correction_ensure(period: str) -> str:
    """One demo invoice corrected; the new credit note's number, or "" (made before, or nothing to correct)."""
    if CreditNote.objects.filter(tenant__slug__in=DEMO_SLUGS).exists():
        return ""
    start, _ = pricing.month_bounds(period)
    invoice = (
        Invoice.objects.filter(
            period__start=start, period__status=BillingPeriod.Status.CLOSED,
            tenant__slug__in=DEMO_SLUGS, status=Invoice.Status.ISSUED, total__gt=Decimal("0"),
        )
        .order_by("tenant_slug")
        .first()
    )
    if invoice is None:
        return ""
    other = Plan.objects.exclude(name=invoice.plan_name).filter(currency=invoice.currency).order_by("name").first()
    try:
        if other is None:
            raise BillingError("no other plan to re-bill on")
        correction = invoice_correct(
            invoice=invoice, reason=DEMO_CORRECTION_REASON.format(plan=other.name), actor=None, plan=other
        )
    except BillingError:
        correction = invoice_correct(invoice=invoice, reason="Demo data: billed twice; cancelled.", actor=None,
                                     reissue=False)  # fmt: skip
    return correction.credit_note.number
