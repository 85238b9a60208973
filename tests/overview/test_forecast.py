"""Days until a datastore is full: a least-squares line through its daily usage."""

from __future__ import annotations

import datetime as dt

import pytest

from overview.forecast import MIN_GROWTH_PER_DAY, forecast, least_squares_slope

GIB = 2**30
DAY0 = dt.date(2026, 3, 1)


def _series(values: list[int], *, skip: tuple[int, ...] = ()) -> dict[dt.date, int]:
    return {DAY0 + dt.timedelta(days=i): v for i, v in enumerate(values) if i not in skip}


def test_a_steady_growth_gives_the_days_until_the_free_space_is_used() -> None:
    result = forecast(_series([100 * GIB + i * GIB for i in range(30)]), free_bytes=45 * GIB)
    assert result.slope_bytes_per_day == pytest.approx(GIB)
    assert (result.days_until_full, result.state) == (45, "growing")


def test_the_slope_is_least_squares_not_first_to_last() -> None:
    # Noisy ends: first-to-last would say 0 per day; the fitted line sees the rise in between.
    values = [10, 11, 12, 13, 14, 15, 16, 17, 18, 10]
    assert least_squares_slope(_series(values)) == pytest.approx(0.5091, abs=1e-4)  # numpy.polyfit agrees


def test_gaps_are_days_without_a_figure_not_zeros() -> None:
    values = [i * GIB for i in range(30)]
    result = forecast(_series(values, skip=(3, 4, 5, 17)), free_bytes=10 * GIB)
    assert result.slope_bytes_per_day == pytest.approx(GIB)
    assert result.points == 26
    assert result.days_until_full == 10


@pytest.mark.parametrize(
    "values",
    [
        [50 * GIB] * 30,
        [50 * GIB - i * GIB for i in range(30)],
        [GIB + (i % 2) * (MIN_GROWTH_PER_DAY // 4) for i in range(30)],
    ],
    ids=["flat", "shrinking", "noise"],
)
def test_flat_shrinking_or_noisy_usage_is_not_growing(values: list[int]) -> None:
    result = forecast(_series(values), free_bytes=GIB)
    assert (result.state, result.days_until_full) == ("not growing", None)


def test_one_day_is_no_trend_and_no_free_space_is_full() -> None:
    assert forecast(_series([GIB]), free_bytes=GIB).state == "no trend"
    assert forecast({}, free_bytes=GIB).state == "no trend"
    full = forecast(_series([GIB, 2 * GIB]), free_bytes=0)
    assert (full.state, full.days_until_full) == ("full", 0)


def test_unknown_free_space_gives_a_trend_but_no_date() -> None:
    result = forecast(_series([GIB, 2 * GIB, 3 * GIB]), free_bytes=None)
    assert result.growing
    assert result.days_until_full is None
