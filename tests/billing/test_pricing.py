"""The billing arithmetic on its own: periods, active days, averaging, rounding, lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing import pricing

GIB = 2**30
D = dt.date


def test_month_bounds_cover_the_whole_month_including_leap_days() -> None:
    assert pricing.month_bounds("2024-02") == (D(2024, 2, 1), D(2024, 2, 29))
    assert pricing.month_bounds("2025-12") == (D(2025, 12, 1), D(2025, 12, 31))


@pytest.mark.parametrize("bad", ["2025-13", "2025-1", "25-01", "2025/01", "", "2025-01-01"])
def test_month_bounds_refuses_anything_but_yyyy_mm(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        pricing.month_bounds(bad)


def test_previous_month_crosses_the_year() -> None:
    assert pricing.previous_month(D(2026, 1, 1)) == "2025-12"
    assert pricing.previous_month(D(2026, 3, 31)) == "2026-02"


def test_active_days_count_activation_and_offboarding_days_both() -> None:
    days = pricing.active_days(
        start=D(2025, 3, 1), end=D(2025, 3, 31), activated_on=D(2025, 3, 10), offboarded_on=D(2025, 3, 12)
    )
    assert days == [D(2025, 3, 10), D(2025, 3, 11), D(2025, 3, 12)]


def test_active_days_are_empty_for_a_tenant_never_activated_or_gone_before_the_month() -> None:
    kw = {"start": D(2025, 3, 1), "end": D(2025, 3, 31)}
    assert pricing.active_days(**kw, activated_on=None, offboarded_on=None) == []
    assert pricing.active_days(**kw, activated_on=D(2025, 1, 1), offboarded_on=D(2025, 2, 28)) == []
    assert pricing.active_days(**kw, activated_on=D(2025, 4, 1), offboarded_on=None) == []


def test_a_missing_day_carries_the_previous_value_and_counts_as_a_gap() -> None:
    days = [D(2025, 1, i) for i in range(1, 5)]
    values = {days[0]: 10 * GIB, days[1]: None, days[3]: 30 * GIB}
    summary = pricing.usage_summary(days, values, carry_in=None)
    # day1 10, day2 (None) carries 10, day3 (missing) carries 10, day4 30 -> 60 / 4 = 15
    assert summary.samples == 2
    assert summary.gaps == 2
    assert summary.avg_gib == Decimal("15.000000")
    assert summary.billed_gib == Decimal("15.00")
    assert summary.peak_gib == Decimal("30.000000")


def test_leading_gaps_carry_the_value_from_before_the_period_else_count_zero() -> None:
    days = [D(2025, 1, i) for i in range(1, 3)]
    values = {days[1]: 4 * GIB}
    assert pricing.usage_summary(days, values, carry_in=2 * GIB).avg_gib == Decimal("3.000000")
    assert pricing.usage_summary(days, values, carry_in=None).avg_gib == Decimal("2.000000")


def test_the_billed_average_rounds_half_up_from_the_exact_value() -> None:
    # 25 days whose exact average is 10.005 GiB: half-up gives 10.01 (half-even would give 10.00).
    days = [D(2025, 1, i) for i in range(1, 26)]
    values = dict.fromkeys(days, 0)
    values[days[0]] = 2**27 * 2001
    summary = pricing.usage_summary(days, values, carry_in=None)
    assert summary.avg_bytes * 25 == 2**27 * 2001
    assert summary.billed_gib == Decimal("10.01")


def test_each_line_is_rounded_half_up_to_the_cent() -> None:
    result = pricing.price_lines(
        billed_gib=Decimal("3.00"),
        metric="logical",
        included_gib=Decimal("2.00"),
        unit_price=Decimal("0.125"),
        base_fee=Decimal("0"),
        minimum_charge=Decimal("0"),
        currency="EUR",
    )
    (usage,) = result.lines
    assert usage.quantity == Decimal("1.00")
    assert usage.amount == Decimal("0.13")  # 0.125 half-up; half-even would be 0.12
    assert result.total == Decimal("0.13")


def test_usage_under_the_included_amount_bills_the_base_fee_only() -> None:
    result = pricing.price_lines(
        billed_gib=Decimal("50.00"),
        metric="latest",
        included_gib=Decimal("100.00"),
        unit_price=Decimal("0.02"),
        base_fee=Decimal("9.99"),
        minimum_charge=Decimal("0"),
        currency="EUR",
    )
    assert [line.kind for line in result.lines] == ["base_fee", "usage"]
    assert result.billable_gib == Decimal("0")
    assert result.total == Decimal("9.99")


def test_the_minimum_charge_tops_up_the_total_on_its_own_line() -> None:
    result = pricing.price_lines(
        billed_gib=Decimal("12.00"),
        metric="logical",
        included_gib=Decimal("10.00"),
        unit_price=Decimal("0.50"),
        base_fee=Decimal("5.00"),
        minimum_charge=Decimal("20.00"),
        currency="EUR",
    )
    assert [(line.kind, line.amount) for line in result.lines] == [
        ("base_fee", Decimal("5.00")),
        ("usage", Decimal("1.00")),
        ("minimum", Decimal("14.00")),
    ]
    assert result.total == Decimal("20.00")
