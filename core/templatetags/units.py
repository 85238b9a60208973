"""One unit system for sizes: binary units (1 KiB = 1024 B, 1 GiB = 2**30 B), as billing uses.

    {% load units %}
    {{ ds.used_bytes|binary_bytes }}      -> "1.5 GiB"
    {{ ds.used_bytes|binary_bytes:2 }}    -> "1.50 GiB"

Every page shows sizes through this filter instead of Django's ``filesizeformat`` (which is
1024-based but says "GB"). Python code that writes a human size (a CSV's human column, a
command's table) calls :func:`binary_bytes` directly; APIs and CSVs keep raw byte integers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
NBSP = "\xa0"  # a size never wraps between number and unit in a table cell


@register.filter(is_safe=True)
def binary_bytes(value: Any, places: Any = 1) -> str:
    """Bytes -> the largest binary unit that keeps the number at or above 1 ("1.5 GiB").

    Whole bytes below 1 KiB carry no decimals ("512 B"); larger sizes carry ``places``
    decimals (default 1), rounded half-up. A value that rounds up to 1024 of its unit moves
    to the next unit ("1.0 MiB", never "1024.0 KiB"). Negative values (a shrinking tenant)
    keep their sign. ``None`` or empty gives "" (no figure); anything that is not a number
    is shown unchanged rather than failing the page.
    """
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    try:
        digits = max(0, min(int(places), 6))
    except (TypeError, ValueError):
        digits = 1  # a wrong argument in a template shows the default, not an error
    if not number.is_finite():
        return str(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    if number < 1024:
        return f"{sign}{number.quantize(Decimal(1), rounding=ROUND_HALF_UP)}{NBSP}B"
    quantum = Decimal(1).scaleb(-digits)
    index = 0
    scaled = number
    while index < len(UNITS) - 1:
        rounded = scaled.quantize(quantum, rounding=ROUND_HALF_UP)
        if rounded < 1024:
            break
        scaled /= 1024
        index += 1
    rounded = scaled.quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{sign}{rounded}{NBSP}{UNITS[index]}"
