"""The billing arithmetic, pure and without the database, so every step is testable alone.

Steps for one tenant and period (docs/billing.md explains them for accountants):

1. ``active_days``: the days of the period the tenant was active (activation day to
   offboarding day, both included, in the portal's time zone).
2. ``daily_usage``: for each active day the plan metric's value from that day's sample;
   a day without one carries the previous known value (counted as a gap; 0 when nothing
   is known yet).
3. ``usage_summary``: average bytes over the active days, in GiB, rounded half-up to two
   decimals (the billed average), the peak, samples and gaps. ``usage_summary_from_totals``
   gives the same from a count, a sum, a peak and the last value when the known days run
   without a hole.
4. ``price_lines``: base fee, usage above the included GiB times the unit price, and a
   top-up to the minimum charge; each line rounded half-up to the cent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from billing.methods import METHOD_TEXT

GIB = 2**30
CENT = Decimal("0.01")
MICRO = Decimal("0.000001")
ZERO = Decimal("0")


def round_money(value: Decimal) -> Decimal:
    """Half-up to the cent (0.005 -> 0.01), the rule for every invoice line."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def bytes_to_gib(value: int | Decimal) -> Decimal:
    """Exact bytes -> GiB (2**30), kept at six decimals for display and export."""
    return (Decimal(value) / GIB).quantize(MICRO, rounding=ROUND_HALF_UP)


def month_bounds(period: str) -> tuple[dt.date, dt.date]:
    """``"2026-03"`` -> (2026-03-01, 2026-03-31). Raises ValueError on anything else."""
    try:
        year_s, month_s = period.split("-")
        if len(year_s) != 4 or len(month_s) != 2:
            raise ValueError
        start = dt.date(int(year_s), int(month_s), 1)
    except ValueError:
        raise ValueError(f"period must look like YYYY-MM, got {period!r}") from None
    next_month = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return start, next_month - dt.timedelta(days=1)


def previous_month(today: dt.date) -> str:
    """The YYYY-MM before the month of ``today``."""
    last_of_previous = today.replace(day=1) - dt.timedelta(days=1)
    return f"{last_of_previous:%Y-%m}"


def active_days(
    *, start: dt.date, end: dt.date, activated_on: dt.date | None, offboarded_on: dt.date | None
) -> list[dt.date]:
    """Days in [start, end] on which the tenant was active at some time (both ends included).

    A tenant never activated has no active day. The offboarding day counts: the tenant's
    data was still on PBS that morning, when the daily sample is taken.
    """
    if activated_on is None:
        return []
    first = max(start, activated_on)
    last = end if offboarded_on is None else min(end, offboarded_on)
    if last < first:
        return []
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class UsageSummary:
    """The usage figures of one tenant and period."""

    active_days: int
    samples: int
    gaps: int
    total_byte_days: int
    avg_bytes: Decimal
    avg_gib: Decimal
    peak_gib: Decimal
    billed_gib: Decimal  # avg_gib rounded half-up to two decimals: the billed quantity


def usage_summary(
    days: Iterable[dt.date], values: Mapping[dt.date, int | None], *, carry_in: int | None
) -> UsageSummary:
    """Average the metric over ``days``; a missing (or None) value carries the previous one.

    ``carry_in`` is the last known value before the first day (None: nothing known, so 0).
    """
    day_list = list(days)
    previous = carry_in
    total = 0
    peak = 0
    samples = 0
    for day in day_list:
        value = values.get(day)
        if value is None:
            value = previous if previous is not None else 0
        else:
            samples += 1
            previous = value
        total += value
        peak = max(peak, value)
    return _summary(active=len(day_list), samples=samples, total=total, peak=peak)


def usage_summary_from_totals(
    *, days: int, lead: int, samples: int, total: int, peak: int, last_value: int | None, carry_in: int | None
) -> UsageSummary:
    """``usage_summary`` from aggregated samples: the same result, computed from the count,
    sum and peak of the known values and the last of them (so the close can price from one
    grouped query instead of every daily row).

    Valid when the ``samples`` known values fall on consecutive days, after ``lead`` days
    without one: those leading days carry ``carry_in`` (0 when None), the days after the run
    carry ``last_value``, and both count as gaps. Without any known value every day carries
    ``carry_in``. Holes inside the run need the days themselves: use ``usage_summary``.
    """
    if samples == 0:
        lead = days
    trail = days - lead - samples
    if min(lead, samples, trail) < 0:
        raise ValueError(f"{lead} + {samples} days do not fit {days} days")
    if lead:
        carried = carry_in if carry_in is not None else 0
        total += lead * carried
        peak = max(peak, carried)
    if trail:
        if last_value is None:
            raise ValueError("days after the last sample need its value")
        total += trail * last_value
    return _summary(active=days, samples=samples, total=total, peak=max(peak, 0))


def _summary(*, active: int, samples: int, total: int, peak: int) -> UsageSummary:
    n = active
    gaps = active - samples
    avg_bytes = (Decimal(total) / n).quantize(MICRO, rounding=ROUND_HALF_UP) if n else ZERO
    avg_gib_exact = Decimal(total) / n / GIB if n else ZERO
    return UsageSummary(
        active_days=n,
        samples=samples,
        gaps=gaps,
        total_byte_days=total,
        avg_bytes=avg_bytes,
        avg_gib=avg_gib_exact.quantize(MICRO, rounding=ROUND_HALF_UP),
        peak_gib=bytes_to_gib(peak),
        # Rounded from the exact average, not from the 6-decimal display value.
        billed_gib=avg_gib_exact.quantize(CENT, rounding=ROUND_HALF_UP),
    )


@dataclass(frozen=True)
class PriceLine:
    kind: str  # InvoiceLine.Kind value
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True)
class PriceResult:
    billable_gib: Decimal
    lines: tuple[PriceLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


def price_lines(
    *,
    billed_gib: Decimal,
    metric: str,
    included_gib: Decimal,
    unit_price: Decimal,
    base_fee: Decimal,
    minimum_charge: Decimal,
    currency: str,
    offsite_gib: Decimal | None = None,
    offsite_unit_price: Decimal | None = None,
) -> PriceResult:
    """Amount = base fee + max(0, billed GiB - included) x unit price [+ offsite GiB x offsite
    price], at least the minimum.

    Lines: the base fee (when not zero), the usage line (always, so the figures show even
    when nothing is billable), the offsite copy (when the plan prices it and the tenant has
    one: no included GiB), and a top-up to the minimum charge when the sum is below it.
    """
    billable = max(ZERO, billed_gib - included_gib)
    lines: list[PriceLine] = []
    if base_fee:
        lines.append(
            PriceLine("base_fee", "Monthly base fee", Decimal("1.00"), "month", base_fee, round_money(base_fee))
        )
    lines.append(
        PriceLine(
            "usage",
            f"Storage, {METHOD_TEXT.get(metric, metric)}: average {billed_gib} GiB, {included_gib} GiB included",
            billable,
            "GiB-month",
            unit_price,
            round_money(billable * unit_price),
        )
    )
    if offsite_gib is not None and offsite_unit_price is not None:
        lines.append(
            PriceLine(
                "offsite",
                f"Offsite copy, logical bytes in the offsite namespace: average {offsite_gib} GiB",
                offsite_gib,
                "GiB-month",
                offsite_unit_price,
                round_money(offsite_gib * offsite_unit_price),
            )
        )
    subtotal = sum((line.amount for line in lines), ZERO)
    minimum = round_money(minimum_charge)
    if subtotal < minimum:
        lines.append(
            PriceLine(
                "minimum",
                f"Minimum monthly charge {minimum} {currency}",
                Decimal("1.00"),
                "month",
                minimum - subtotal,
                minimum - subtotal,
            )
        )
    return PriceResult(billable_gib=billable, lines=tuple(lines))
