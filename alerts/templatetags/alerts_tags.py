"""The open-alerts partial for pages of other apps (staff tenant page, client page).

    {% load alerts_tags %}
    {% tenant_alerts tenant.pk %}
"""

from __future__ import annotations

from typing import Any

from django import template

from alerts import selectors

register = template.Library()


@register.inclusion_tag("alerts/_tenant_alerts.html")
def tenant_alerts(tenant_id: int) -> dict[str, Any]:
    return {"tenant_alerts": list(selectors.open_alerts_for_tenant(tenant_id))}
