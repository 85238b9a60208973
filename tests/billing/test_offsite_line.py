"""The offsite copy as an optional invoice line of its own (issue: offsite replication)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import Invoice, UsageSample
from billing.services.close import billing_period_close
from tests.billing.factories import GIB, days_of, make_billed_tenant, make_plan, make_sample

pytestmark = pytest.mark.django_db

JAN = days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31))


def _lines(invoice: Invoice) -> list[tuple[str, Decimal, Decimal]]:
    return [(line.kind, line.quantity, line.amount) for line in invoice.lines.order_by("position")]


def test_a_plan_with_an_offsite_price_bills_the_average_offsite_copy_as_its_own_line() -> None:
    plan = make_plan(price_per_gib="0.10", included_gib="5")
    plan.offsite_price_per_gib = Decimal("0.02")
    plan.save()
    tenant = make_billed_tenant(plan=plan)
    for day in JAN:
        make_sample(tenant=tenant, day=day, logical=10 * GIB)
    # The offsite copy started on the 17th with 40 GiB (a gap on the 20th carries it).
    UsageSample.objects.filter(tenant=tenant, day__gte=dt.date(2025, 1, 17)).exclude(day=dt.date(2025, 1, 20)).update(
        offsite_bytes=40 * GIB
    )

    billing_period_close(period="2025-01")

    invoice = Invoice.objects.get(tenant=tenant)
    offsite_avg = (Decimal(40) * 15 / 31).quantize(Decimal("0.01"))  # 15 days of 40 GiB over 31 days
    assert offsite_avg == Decimal("19.35")
    assert _lines(invoice) == [
        ("usage", Decimal("5.00"), Decimal("0.50")),
        ("offsite", offsite_avg, Decimal("0.39")),  # 19.35 x 0.02 = 0.387 -> 0.39
    ]
    assert invoice.total == Decimal("0.89")


def test_without_an_offsite_price_or_an_offsite_copy_there_is_no_offsite_line() -> None:
    priced = make_plan(price_per_gib="0.10")
    priced.offsite_price_per_gib = Decimal("0.02")
    priced.save()
    unpriced = make_plan(price_per_gib="0.10")
    no_copy = make_billed_tenant(plan=priced)
    not_billed = make_billed_tenant(plan=unpriced)
    for day in JAN:
        make_sample(tenant=no_copy, day=day, logical=10 * GIB)
        make_sample(tenant=not_billed, day=day, logical=10 * GIB)
    UsageSample.objects.filter(tenant=not_billed).update(offsite_bytes=40 * GIB)

    billing_period_close(period="2025-01")

    for tenant in (no_copy, not_billed):
        assert [kind for kind, _, _ in _lines(Invoice.objects.get(tenant=tenant))] == ["usage"]
