"""Template helpers for billing figures and the reusable usage/invoice partials.

    {% load billing_tags %}
    {{ sample.logical_bytes|gib }}                 -> "12.34 GiB"
    {% usage_chart tenant.pk %}                    -> the 90-day SVG chart (one query)
    {% tenant_invoice_list tenant.pk %}            -> the tenant's invoices (one query)

Pages that already hold a series can also
``{% include "billing/_usage_chart.html" with series=series %}``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import template

from billing.pricing import GIB
from billing.selectors.invoices import tenant_invoices
from billing.selectors.usage import usage_series

register = template.Library()


@register.filter
def gib(value: Any, places: int = 2) -> str:
    """Bytes -> "x.xx GiB" (2**30); empty for None (no sample)."""
    if value is None or value == "":
        return ""
    quantum = Decimal(1).scaleb(-int(places))
    return f"{(Decimal(value) / GIB).quantize(quantum, rounding=ROUND_HALF_UP)} GiB"


@register.inclusion_tag("billing/_usage_chart.html")
def usage_chart(tenant_id: int, days: int = 90) -> dict[str, Any]:
    return {"series": usage_series(tenant_id, days=days)}


@register.inclusion_tag("billing/_invoice_list.html", takes_context=True)
def tenant_invoice_list(context: template.Context, tenant_id: int) -> dict[str, Any]:
    return {
        "invoices": tenant_invoices(tenant_id=tenant_id),
        "user": context.get("user"),
        "is_accounting": context.get("is_accounting"),
        "is_msp_admin": context.get("is_msp_admin"),
        "is_client": context.get("is_client"),
    }
