"""The close prices from aggregated samples in batches: the same figures as the daily rule,
a fixed number of queries whatever the number of tenants, numbers consecutive across
batches, and one transaction over all of them."""

from __future__ import annotations

import datetime as dt
import gc
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing import pricing
from billing.models import BillingPeriod, DocumentSequence, Invoice, UsageSample
from billing.services import close as close_module
from billing.services import drafts as drafts_module
from billing.services.close import billing_period_close
from plans.models import Plan
from tests.billing.factories import GIB, days_of, make_billed_tenant, make_plan, make_sample

JAN = days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31))


@pytest.mark.parametrize("seed", range(60))
def test_the_summary_from_totals_equals_the_daily_rule_for_a_run_without_holes(seed: int) -> None:
    rng = random.Random(seed)
    days = JAN[: rng.randint(1, 31)]
    lead = rng.randint(0, len(days))
    known = rng.randint(0, len(days) - lead)
    run = days[lead : lead + known]
    values = {day: rng.randint(0, 500) * GIB // 7 for day in run}
    carry_in = rng.choice([None, 0, rng.randint(1, 900) * GIB])

    daily = pricing.usage_summary(days, values, carry_in=carry_in)
    grouped = pricing.usage_summary_from_totals(
        days=len(days), lead=lead, samples=len(values), total=sum(values.values()),
        peak=max(values.values(), default=0), last_value=values[run[-1]] if run else None, carry_in=carry_in,
    )  # fmt: skip

    assert grouped == daily


def test_the_summary_from_totals_refuses_a_run_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        pricing.usage_summary_from_totals(days=3, lead=1, samples=3, total=0, peak=0, last_value=0, carry_in=None)
    with pytest.raises(ValueError, match="need its value"):
        pricing.usage_summary_from_totals(days=3, lead=0, samples=2, total=0, peak=0, last_value=None, carry_in=None)


def _expected(tenant, plan: Plan, days: list[dt.date]) -> tuple[Decimal, int, int, Decimal]:
    """The daily rule applied by hand to the tenant's rows (no close code involved)."""
    field = {"logical": "logical_bytes", "latest": "latest_bytes", "physical": "physical_estimate_bytes"}[plan.metric]
    rows = {s.day: getattr(s, field) for s in UsageSample.objects.filter(tenant=tenant, day__in=days)}
    previous, total, gaps = None, 0, 0
    before = UsageSample.objects.filter(tenant=tenant, day__lt=days[0]).order_by("-day").first()
    if days[0] == JAN[0] and JAN[0] not in rows and before is not None:
        previous = getattr(before, field)
    for day in days:
        value = rows.get(day)
        if value is None:
            gaps += 1
            value = previous or 0
        previous = value if rows.get(day) is not None else previous
        total += value
    avg = Decimal(total) / len(days) / GIB
    return avg.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP"), len(days) - gaps, gaps, avg


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [7, 8, 9])
def test_tenants_with_and_without_holes_are_priced_alike_by_the_grouped_and_the_daily_path(monkeypatch, seed) -> None:
    rowwise: list[int] = []
    stream = drafts_module._figures_stream

    def spy(start, end, tenant_ids=None, **kwargs):
        rowwise.extend(tenant_ids or [])
        return stream(start, end, tenant_ids, **kwargs)

    monkeypatch.setattr(drafts_module, "_figures_stream", spy)
    rng = random.Random(seed)
    plans = [make_plan(metric=m, price_per_gib="0.10") for m in (Plan.Metric.LOGICAL, Plan.Metric.LATEST)]
    cases = []
    for n in range(24):
        plan = plans[n % 2]
        partial = n % 6 == 5
        tenant = make_billed_tenant(plan=plan, slug=f"t{n:02d}", activated=JAN[9] if partial else dt.date(2024, 6, 1))
        if n % 4 == 0:  # a value from December to carry in
            make_sample(tenant=tenant, day=dt.date(2024, 12, 31), logical=77 * GIB, latest=33 * GIB)
        first, stop = rng.choice([0, 0, 3, 12]), rng.choice([31, 31, 30, 25])  # late starts, early ends
        holes = set(rng.sample(range(31), k=rng.choice([0, 0, 0, 1, 3])))  # some tenants have holes
        for i, day in enumerate(JAN):
            if first <= i < stop and i not in holes:
                make_sample(tenant=tenant, day=day, logical=(10 + n + i) * GIB, latest=(5 + i % 7) * GIB, snapshots=i)
        cases.append((tenant, plan, JAN[9:] if partial else JAN))

    result = billing_period_close(period="2025-01")

    assert result.created == 24
    assert 0 < len(set(rowwise)) < 24  # both paths were taken
    for tenant, plan, days in cases:
        invoice = Invoice.objects.get(tenant=tenant)
        billed, samples, gaps, avg = _expected(tenant, plan, days)
        assert (invoice.billed_gib, invoice.samples, invoice.gaps) == (billed, samples, gaps), tenant.slug
        assert invoice.avg_gib == avg.quantize(Decimal("0.000001"), rounding="ROUND_HALF_UP"), tenant.slug
        last = UsageSample.objects.filter(tenant=tenant, day__in=days).order_by("-day").first()
        assert invoice.snapshots == (last.snapshot_count if last else 0), tenant.slug


def _samples(tenants: list, days: list[dt.date]) -> None:
    for n, tenant in enumerate(tenants):
        for i, day in enumerate(days):
            if (n + i) % 11:  # some tenants have a hole, some not: both paths are taken
                make_sample(tenant=tenant, day=day, logical=(n + 1) * GIB)


@pytest.mark.django_db
def test_the_number_of_queries_does_not_grow_with_the_number_of_tenants() -> None:
    plan = make_plan(price_per_gib="1")
    tenants = [make_billed_tenant(plan=plan, slug=f"q{n:03d}") for n in range(4)]
    _samples(tenants, JAN)
    with CaptureQueriesContext(connection) as few:
        assert billing_period_close(period="2025-01").created == 4
    tenants += [make_billed_tenant(plan=plan, slug=f"r{n:03d}") for n in range(16)]
    _samples(tenants, days_of(dt.date(2025, 2, 1), dt.date(2025, 2, 28)))
    with CaptureQueriesContext(connection) as many:
        assert billing_period_close(period="2025-02").created == 20

    assert len(many.captured_queries) <= len(few.captured_queries)


@pytest.mark.django_db
def test_invoice_numbers_run_on_across_batches_in_slug_order(monkeypatch) -> None:
    monkeypatch.setattr(close_module, "_BATCH", 2)
    monkeypatch.setattr(drafts_module, "_BATCH", 2)
    plan = make_plan(base_fee="1")
    for slug in ["echo", "alpha", "delta", "bravo", "charlie"]:
        make_billed_tenant(plan=plan, slug=slug)
    make_billed_tenant(plan=None, slug="foxtrot")

    result = billing_period_close(period="2025-01")

    assert (result.created, result.skipped_no_plan, result.totals) == (5, ["foxtrot"], {"EUR": "5.00"})
    numbers = list(Invoice.objects.order_by("number").values_list("tenant_slug", "number"))
    assert [slug for slug, _ in numbers] == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert [int(number.rsplit("-", 1)[1]) for _, number in numbers] == [1, 2, 3, 4, 5]


@pytest.mark.django_db
def test_a_failure_in_a_later_batch_issues_nothing_and_uses_no_number(monkeypatch) -> None:
    monkeypatch.setattr(close_module, "_BATCH", 2)
    plan = make_plan(base_fee="1")
    for slug in ["a1", "a2", "a3", "a4", "a5"]:
        make_billed_tenant(plan=plan, slug=slug)
    real = close_module._draft

    def failing(**kwargs):
        if kwargs["tenant"].slug == "a5":
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(close_module, "_draft", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        billing_period_close(period="2025-01")

    assert not Invoice.objects.exists()
    assert not BillingPeriod.objects.filter(start=JAN[0], status=BillingPeriod.Status.CLOSED).exists()
    assert not DocumentSequence.objects.filter(last_number__gt=0).exists()
    monkeypatch.setattr(close_module, "_draft", real)
    assert billing_period_close(period="2025-01").created == 5
    assert sorted(Invoice.objects.values_list("number", flat=True))[-1].endswith("-000005")


@pytest.mark.django_db
def test_the_close_leaves_the_garbage_collector_as_it_found_it() -> None:
    make_billed_tenant(plan=make_plan(base_fee="1"))
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()

    billing_period_close(period="2025-01")

    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)
