"""Invoices: one with its lines, its replacement, a tenant's invoices; the plans list."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from billing.models import CreditNote, Invoice, InvoiceLine
from plans.models import Plan


def invoice_get(*, number: str, tenant_id: int | None = None) -> Invoice | None:
    """The invoice with its lines; ``tenant_id`` scopes the lookup to one tenant's."""
    qs = Invoice.objects.select_related("period", "tenant", "credit_note", "replaces", "issued_by").prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")),
    )
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.filter(number=number).first()


def credit_note_get(*, number: str, tenant_id: int | None = None) -> CreditNote | None:
    """The credit note with its invoice; ``tenant_id`` scopes the lookup to one tenant's."""
    qs = CreditNote.objects.select_related("invoice", "period")
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.filter(number=number).first()


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
