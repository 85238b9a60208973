"""When a datastore fills up: a straight line through its recent daily usage (pure, no Django).

The trend is the least-squares slope of bytes over days; the forecast is the free space
divided by that slope. A datastore whose usage does not grow (flat, shrinking, or growing
by less than ``MIN_GROWTH_PER_DAY``) is "not growing": no date is made up for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

# Below this a trend is noise (a few snapshots pruned and written), not growth: 1 MiB a day.
MIN_GROWTH_PER_DAY = 2**20


@dataclass(frozen=True)
class Forecast:
    """The trend of one datastore and what it means for its free space."""

    points: int  # days with a figure
    slope_bytes_per_day: float | None  # None: fewer than two days
    days_until_full: int | None  # None: not growing, unknown free space, or too few days

    @property
    def growing(self) -> bool:
        return self.slope_bytes_per_day is not None and self.slope_bytes_per_day >= MIN_GROWTH_PER_DAY

    @property
    def state(self) -> str:
        """"full" (no space left), "growing", "not growing" or "no trend" (too few days)."""
        if self.days_until_full == 0:
            return "full"
        if self.slope_bytes_per_day is None:
            return "no trend"
        return "growing" if self.growing else "not growing"


def least_squares_slope(series: Mapping[dt.date, int]) -> float | None:
    """Bytes per day of the least-squares line through (day, bytes); None below two days."""
    if len(series) < 2:
        return None
    first = min(series)
    xs = [(day - first).days for day in series]
    ys = [float(value) for value in series.values()]
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


def forecast(series: Mapping[dt.date, int], *, free_bytes: int | None) -> Forecast:
    """The datastore's trend and the whole days until ``free_bytes`` is used up at that pace."""
    slope = least_squares_slope(series)
    days: int | None = None
    if free_bytes is not None and free_bytes <= 0:
        days = 0
    elif free_bytes is not None and slope is not None and slope >= MIN_GROWTH_PER_DAY:
        days = int(free_bytes // slope)
    return Forecast(points=len(series), slope_bytes_per_day=slope, days_until_full=days)
