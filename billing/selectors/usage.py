"""A tenant's daily usage series and the geometry of its SVG chart."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.utils import timezone

from billing import pricing
from billing.models import UsageSample

CHART_W = 720
CHART_H = 240
PAD_L = 64
PAD_R = 12
PAD_T = 12
PAD_B = 28
METRICS = (
    ("logical", "Logical (all snapshots)", "#1f6feb"),
    ("latest", "Latest per group", "#1a7f37"),
    ("physical", "Physical estimate (apportioned)", "#9a6700"),
)
# Drawn only when the series holds chunk-exact figures (uncompressed chunk bytes).
CHUNK_METRICS = (
    ("referenced", "Referenced (distinct chunks)", "#8250df"),
    ("exclusive", "Exclusive (only this tenant)", "#bf3989"),
    ("share", "Share (chunks split among tenants)", "#0a7b83"),
)


@dataclass(frozen=True)
class UsagePoint:
    day: dt.date
    logical: int | None
    latest: int | None
    physical: int | None
    snapshots: int | None
    # False before the tenant's first sample ever: nothing was measured yet, so no gap.
    measured: bool = True
    referenced: int | None = None
    exclusive: int | None = None
    share: int | None = None
    physical_share: int | None = None
    chunk_gc_at: dt.datetime | None = None

    @property
    def sampled(self) -> bool:
        return self.logical is not None

    @property
    def gap(self) -> bool:
        return self.measured and not self.sampled


@dataclass
class ChartLine:
    key: str
    label: str
    color: str
    segments: list[str]


@dataclass
class UsageSeries:
    """A tenant's daily samples over ``days`` days, with the geometry of its SVG chart.

    Days without a sample are ``None`` (the line breaks there and a gap mark is drawn);
    nothing is interpolated.
    """

    tenant_id: int
    points: list[UsagePoint]
    width: int = CHART_W
    height: int = CHART_H

    @property
    def first_day(self) -> dt.date:
        return self.points[0].day

    @property
    def last_day(self) -> dt.date:
        return self.points[-1].day

    @property
    def sampled_days(self) -> int:
        return sum(1 for p in self.points if p.sampled)

    @property
    def gap_days(self) -> int:
        return sum(1 for p in self.points if p.gap)

    @property
    def latest(self) -> UsagePoint | None:
        for point in reversed(self.points):
            if point.sampled:
                return point
        return None

    @property
    def has_physical(self) -> bool:
        return any(p.physical is not None for p in self.points)

    @cached_property
    def has_chunk(self) -> bool:
        return any(p.referenced is not None for p in self.points)

    @property
    def latest_chunk(self) -> UsagePoint | None:
        for point in reversed(self.points):
            if point.referenced is not None:
                return point
        return None

    @property
    def metrics(self) -> tuple[tuple[str, str, str], ...]:
        return METRICS + CHUNK_METRICS if self.has_chunk else METRICS

    @cached_property
    def y_max_gib(self) -> Decimal:
        # Cached: every plotted point scales by it (once per point made this quadratic).
        keys = [key for key, _, _ in self.metrics]
        peak = max(
            (v for p in self.points for v in (getattr(p, k) for k in keys) if v is not None),
            default=0,
        )
        return _nice_ceiling(Decimal(peak) / pricing.GIB)

    def _x(self, index: int) -> float:
        span = max(1, len(self.points) - 1)
        return PAD_L + (self.width - PAD_L - PAD_R) * index / span

    def _y(self, value: int) -> float:
        top = self.y_max_gib or Decimal(1)
        frac = float(Decimal(value) / pricing.GIB / top)
        return PAD_T + (self.height - PAD_T - PAD_B) * (1 - frac)

    @property
    def plot_left(self) -> int:
        return PAD_L

    @property
    def plot_right(self) -> int:
        return self.width - PAD_R

    @property
    def plot_bottom(self) -> int:
        return self.height - PAD_B

    @property
    def plot_top(self) -> int:
        return PAD_T

    @property
    def lines(self) -> list[ChartLine]:
        out = []
        for key, label, color in self.metrics:
            segments: list[str] = []
            current: list[str] = []
            for i, point in enumerate(self.points):
                value = getattr(point, key)
                if value is None:
                    if current:
                        segments.append(" ".join(current))
                        current = []
                    continue
                current.append(f"{self._x(i):.1f},{self._y(value):.1f}")
            if current:
                segments.append(" ".join(current))
            # A single point draws nothing as a polyline: widen it to a short dash.
            segments = [s if " " in s else _dash(s) for s in segments]
            out.append(ChartLine(key, label, color, segments))
        return out

    @property
    def gap_marks(self) -> list[float]:
        return [round(self._x(i), 1) for i, p in enumerate(self.points) if p.gap]

    @property
    def y_ticks(self) -> list[tuple[float, str]]:
        top = self.y_max_gib
        ticks = []
        for i in range(5):
            value = top * i / 4
            y = PAD_T + (self.height - PAD_T - PAD_B) * (1 - i / 4)
            ticks.append((round(y, 1), f"{value.normalize():f} GiB" if value else "0"))
        return ticks

    @property
    def x_ticks(self) -> list[tuple[float, str, str]]:
        """(x, label, text-anchor): the first label starts at the axis, the last ends at it."""
        n = len(self.points)
        picks = sorted({0, n // 3, 2 * n // 3, n - 1})
        anchors = {0: "start", n - 1: "end"}
        return [(round(self._x(i), 1), f"{self.points[i].day:%Y-%m-%d}", anchors.get(i, "middle")) for i in picks]


def _dash(point: str) -> str:
    x, y = (float(v) for v in point.split(","))
    return f"{x - 4:.1f},{y:.1f} {x + 4:.1f},{y:.1f}"


def _nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1/2/5 x 10^n at or above ``value`` (at least 1 GiB)."""
    if value <= 1:
        return Decimal(1)
    exponent = len(str(int(value))) - 1
    for step in (1, 2, 5, 10):
        candidate = Decimal(step) * Decimal(10) ** exponent
        if candidate >= value:
            return candidate
    return Decimal(10) ** (exponent + 1)


def usage_series(tenant_id: int, days: int = 90, *, today: dt.date | None = None) -> UsageSeries:
    """The last ``days`` days of a tenant's samples (two queries), oldest first. Days before
    the tenant's first sample ever are unmeasured, not gaps."""
    today = today or timezone.localdate()
    first_day = (
        UsageSample.objects.filter(tenant_id=tenant_id).order_by("day").values_list("day", flat=True).first()
    )
    start = today - dt.timedelta(days=days - 1)
    rows = {
        row[0]: row
        for row in UsageSample.objects.filter(tenant_id=tenant_id, day__gte=start, day__lte=today).values_list(
            "day", "logical_bytes", "latest_bytes", "physical_estimate_bytes", "snapshot_count",
            "referenced_bytes", "exclusive_bytes", "share_bytes", "physical_share_bytes", "chunk_gc_at",
        )
    }
    points = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        row = rows.get(day)
        points.append(
            UsagePoint(day, *row[1:5], True, *row[5:])
            if row
            else UsagePoint(day, None, None, None, None, measured=first_day is not None and day >= first_day)
        )
    return UsageSeries(tenant_id=tenant_id, points=points)
