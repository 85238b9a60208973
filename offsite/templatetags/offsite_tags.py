"""Offsite status partials for pages of other apps (tenant and host pages).

    {% load offsite_tags %}
    {% tenant_offsite_status tenant %}   -> copies of this tenant and whether they are stale
    {% host_offsite_status host %}       -> sync jobs pulling to the host, stale copies
"""

from __future__ import annotations

from typing import Any

from django import template

from offsite import selectors

register = template.Library()


@register.inclusion_tag("offsite/_tenant_status.html")
def tenant_offsite_status(tenant: Any) -> dict[str, Any]:
    return {"offsite": selectors.tenant_offsite_status(tenant)}


@register.inclusion_tag("offsite/_host_status.html")
def host_offsite_status(host: Any) -> dict[str, Any]:
    return {"offsite_summary": selectors.host_offsite_summary(host)}
