"""The monthly close: one transaction, one invoice per billable tenant, idempotent."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing import pricing
from billing.models import (
    METRIC_FIELDS,
    BillingPeriod,
    Invoice,
    InvoiceLine,
)
from billing.services.base import BillingError
from billing.services.drafts import (
    DraftInvoice,
    _allocate_numbers,
    _billable_tenants,
    _carry_ins,
    _DayFigures,
    _draft,
    _figures_stream,
    _tenant_days,
)
from core.actors import actor_or_none
from plans.models import Plan
from tenants.models import Tenant


@dataclass
class CloseResult:
    period: BillingPeriod
    created: int
    already_closed: bool
    skipped_no_plan: list[str]
    totals: dict[str, str]


def billing_period_get_or_create(*, period: str) -> BillingPeriod:
    start, end = pricing.month_bounds(period)
    row, _ = BillingPeriod.objects.get_or_create(start=start, defaults={"end": end})
    return row


def billing_period_close(*, period: str, actor: Any = None, today: dt.date | None = None) -> CloseResult:
    """Close a month: one invoice per billable tenant, numbered, frozen. Idempotent.

    Steps: refuse a month that is not over; lock the period row (a second close waits, then
    finds it closed and does nothing); walk the billable tenants in id order beside the
    month's samples (streamed, so memory stays flat); price each tenant; number the
    invoices in tenant slug order; write invoices and lines in bulk; mark the period closed;
    audit. All in one transaction: a failure leaves the period open and nothing issued.
    """
    start, end = pricing.month_bounds(period)
    today = today or timezone.localdate()
    if end >= today:
        raise BillingError(f"{period} is not over yet; it can be closed from {end + dt.timedelta(days=1)} on")
    prefix = settings.PORTAL_INVOICE_PREFIX
    with transaction.atomic():
        row = billing_period_get_or_create(period=period)
        row = BillingPeriod.objects.select_for_update().get(pk=row.pk)
        if row.status == BillingPeriod.Status.CLOSED:
            return CloseResult(
                row, 0, True, list(row.notes.get("skipped_no_plan", [])), dict(row.notes.get("totals", {}))
            )
        now = timezone.now()
        tenants = list(_billable_tenants(row).exclude(invoices__period=row).order_by("pk"))
        skipped = sorted(t.slug for t in tenants if t.plan_id is None)
        days_by_id = {t.pk: _tenant_days(t, row) for t in tenants if t.plan_id is not None}
        billable = [t for t in tenants if days_by_id.get(t.pk)]
        # Carry-ins only for tenants billed from the first of the month whose first day lacks a
        # sample; discovered while streaming, fetched afterwards in one go.
        drafts: dict[int, tuple[Tenant, dict[dt.date, _DayFigures]]] = {}
        stream = _figures_stream(start, end)
        pending = next(stream, None)
        for tenant in billable:
            while pending is not None and pending[0] < tenant.pk:
                pending = next(stream, None)
            figures: dict[dt.date, _DayFigures] = {}
            if pending is not None and pending[0] == tenant.pk:
                figures = pending[1]
                pending = next(stream, None)
            # Only the active days count; samples outside them are not billed.
            active = set(days_by_id[tenant.pk])
            drafts[tenant.pk] = (tenant, {d: f for d, f in figures.items() if d in active})
        need_carry = [pk for pk, (_, figs) in drafts.items() if days_by_id[pk][0] == start and start not in figs]
        carry = _carry_ins(need_carry, start)
        built: list[DraftInvoice] = []
        for pk, (tenant, figs) in drafts.items():
            plan = tenant.plan
            metric_field = METRIC_FIELDS[Plan.Metric(plan.metric)]
            built.append(
                _draft(
                    tenant=tenant,
                    plan=plan,
                    period=row,
                    days=days_by_id[pk],
                    figures=figs,
                    carry_in=carry.get(pk, {}).get(metric_field),
                    offsite_carry_in=carry.get(pk, {}).get("offsite_bytes"),
                    now=now,
                    actor=actor,
                )
            )
        built.sort(key=lambda d: d.invoice.tenant_slug)
        numbers = _allocate_numbers(prefix, now.year, len(built))
        for draft, number in zip(built, numbers, strict=True):
            draft.invoice.number = number
        Invoice.objects.bulk_create([d.invoice for d in built], batch_size=1000)
        lines = []
        for draft in built:
            for line in draft.lines:
                line.invoice = draft.invoice
                lines.append(line)
        InvoiceLine.objects.bulk_create(lines, batch_size=2000)
        totals: dict[str, Decimal] = {}
        for draft in built:
            totals[draft.invoice.currency] = totals.get(draft.invoice.currency, Decimal("0")) + draft.invoice.total
        totals_s = {cur: str(amount) for cur, amount in sorted(totals.items())}
        row.status = BillingPeriod.Status.CLOSED
        row.closed_at = now
        row.closed_by = actor_or_none(actor)
        row.notes = {"invoices": len(built), "skipped_no_plan": skipped, "totals": totals_s}
        row.save(update_fields=["status", "closed_at", "closed_by", "notes"])
        audit_record(
            action="billing.period_closed",
            actor=actor,
            target=period,
            detail={"invoices": len(built), "skipped_no_plan": len(skipped), "totals": totals_s},
        )
    return CloseResult(row, len(built), False, skipped, totals_s)


def _draft_for_tenant(
    *, tenant: Tenant, plan: Plan, period: BillingPeriod, now: dt.datetime, actor: Any
) -> DraftInvoice:
    days = _tenant_days(tenant, period)
    if not days:
        raise BillingError(f"{tenant.slug} was not active in {period.label}")
    figures: dict[dt.date, _DayFigures] = {}
    for _, figs in _figures_stream(days[0], days[-1], tenant_ids=[tenant.pk]):
        figures = figs
    metric_field = METRIC_FIELDS[Plan.Metric(plan.metric)]
    carry_in = offsite_carry_in = None
    if days[0] == period.start and period.start not in figures:
        carried = _carry_ins([tenant.pk], period.start).get(tenant.pk, {})
        carry_in, offsite_carry_in = carried.get(metric_field), carried.get("offsite_bytes")
    return _draft(
        tenant=tenant, plan=plan, period=period, days=days, figures=figures, carry_in=carry_in, now=now, actor=actor,
        offsite_carry_in=offsite_carry_in,
    )  # fmt: skip


def _save_draft(draft: DraftInvoice, number: str) -> Invoice:
    draft.invoice.number = number
    draft.invoice.save()
    for line in draft.lines:
        line.invoice = draft.invoice
    InvoiceLine.objects.bulk_create(draft.lines)
    return draft.invoice
