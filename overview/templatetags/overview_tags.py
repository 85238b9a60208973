"""Small display helpers of the overview and the tenant list.

    {% load overview_tags %}
    {{ tenant.newest_backup_at|age:now }}   -> "5 h", "3 d", "40 min"
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template

register = template.Library()


@register.filter
def age(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago, in the one unit that reads best in a table cell (cheaper than
    ``timesince``, which the list would call fifty times a page)."""
    if value is None:
        return ""
    now = now or dt.datetime.now(tz=dt.UTC)
    seconds = max(0, int((now - value).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@register.filter
def signed(value: Any) -> str:
    """A "+" before a positive number (a growth), nothing before zero or a negative one."""
    try:
        return "+" if value is not None and value > 0 else ""
    except TypeError:
        return ""
