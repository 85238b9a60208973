"""Billing periods: the list with counts and totals, one period, its totals and invoices."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, QuerySet, Sum
from django.utils import timezone

from billing import pricing
from billing.models import BillingPeriod, CreditNote, Invoice


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
