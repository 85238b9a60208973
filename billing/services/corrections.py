"""Late invoices and corrections (a credit note plus a new invoice; never an edit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing import pricing
from billing.models import (
    BillingPeriod,
    CreditNote,
    Invoice,
)
from billing.services.base import BillingError
from billing.services.close import _draft_for_tenant, _save_draft
from billing.services.drafts import _allocate_numbers
from core.actors import actor_or_none
from plans.models import Plan
from tenants.models import Tenant


def invoice_issue_late(*, tenant: Tenant, period: str, actor: Any) -> Invoice:
    """Bill a tenant the close skipped (it had no plan then) for an already closed month."""
    with transaction.atomic():
        row = BillingPeriod.objects.select_for_update().filter(start=pricing.month_bounds(period)[0]).first()
        if row is None or row.status != BillingPeriod.Status.CLOSED:
            raise BillingError(f"{period} is not closed; close it instead")
        if Invoice.objects.filter(tenant=tenant, period=row).exists():
            raise BillingError(f"{tenant.slug} already has an invoice for {period}; correct it instead")
        tenant = Tenant.objects.select_related("plan", "host", "datastore").get(pk=tenant.pk)
        if tenant.plan is None:
            raise BillingError(f"{tenant.slug} has no plan")
        now = timezone.now()
        draft = _draft_for_tenant(tenant=tenant, plan=tenant.plan, period=row, now=now, actor=actor)
        (number,) = _allocate_numbers(settings.PORTAL_INVOICE_PREFIX, now.year, 1)
        invoice = _save_draft(draft, number)
        audit_record(
            action="billing.invoice_issued",
            actor=actor,
            tenant=tenant,
            target=invoice.number,
            detail={"period": period, "total": str(invoice.total), "currency": invoice.currency},
        )
    return invoice


# What a correction may change; identical on all of these means there is nothing to correct.
_COMPARED = (
    "client_name",
    "host_name",
    "datastore",
    "namespace",
    "plan_name",
    "metric",
    "currency",
    "included_gib",
    "unit_price",
    "base_fee",
    "minimum_charge",
    "first_day",
    "last_day",
    "active_days",
    "samples",
    "gaps",
    "avg_bytes",
    "billed_gib",
    "total",
)


@dataclass
class Correction:
    credit_note: CreditNote
    invoice: Invoice | None


def invoice_correct(
    *, invoice: Invoice, reason: str, actor: Any, plan: Plan | None = None, reissue: bool = True
) -> Correction:
    """Correct an issued invoice: a credit note for all of it, then (``reissue``) a new
    invoice computed afresh from the stored samples and the tenant's plan (or ``plan``).

    Refuses an invoice already credited, an empty reason, and a re-issue that would come
    out identical to the invoice it replaces (nothing to correct).
    """
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("a correction needs a reason")
    with transaction.atomic():
        original = Invoice.objects.select_for_update().select_related("period").get(pk=invoice.pk)
        if original.status != Invoice.Status.ISSUED:
            raise BillingError(f"{original.number} is already credited")
        now = timezone.now()
        draft = None
        if reissue:
            tenant = Tenant.objects.select_related("plan", "host", "datastore").get(pk=original.tenant_id)
            use_plan = plan or tenant.plan
            if use_plan is None:
                raise BillingError(f"{tenant.slug} has no plan; pass one")
            draft = _draft_for_tenant(tenant=tenant, plan=use_plan, period=original.period, now=now, actor=actor)
            if all(getattr(draft.invoice, f) == getattr(original, f) for f in _COMPARED):
                raise BillingError(
                    f"recomputing {original.number} gives the same invoice; fix the samples or plan first"
                )
        changed = Invoice.objects.filter(pk=original.pk, status=Invoice.Status.ISSUED).update(
            status=Invoice.Status.CREDITED
        )
        if changed != 1:
            raise BillingError(f"{original.number} was credited meanwhile")
        (cn_number,) = _allocate_numbers(settings.PORTAL_CREDIT_NOTE_PREFIX, now.year, 1)
        credit = CreditNote.objects.create(
            number=cn_number,
            invoice=original,
            tenant_id=original.tenant_id,
            period=original.period,
            currency=original.currency,
            amount=original.total,
            reason=reason,
            issued_at=now,
            issued_by=actor_or_none(actor),
        )
        new_invoice = None
        if draft is not None:
            draft.invoice.replaces = original
            draft.invoice.note = reason
            (number,) = _allocate_numbers(settings.PORTAL_INVOICE_PREFIX, now.year, 1)
            new_invoice = _save_draft(draft, number)
        audit_record(
            action="billing.invoice_corrected",
            actor=actor,
            tenant=original.tenant,
            target=original.number,
            detail={
                "credit_note": credit.number,
                "credited": str(credit.amount),
                "new_invoice": new_invoice.number if new_invoice else "",
                "new_total": str(new_invoice.total) if new_invoice else "",
                "currency": original.currency,
                "reason": reason[:500],
            },
        )
    return Correction(credit_note=credit, invoice=new_invoice)
