"""Closing a month: averages, gaps, partial months, rounding, idempotence, corrections."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import BillingPeriod, CreditNote, DocumentFrozen, Invoice, InvoiceLine
from billing.services.base import BillingError
from billing.services.close import billing_period_close
from billing.services.corrections import invoice_correct
from plans.models import Plan
from tests.billing.factories import GIB, days_of, make_billed_tenant, make_plan, make_sample

pytestmark = pytest.mark.django_db

JAN = days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31))


def _cents(value: Fraction) -> Decimal:
    """Half-up to the cent, from an exact fraction (independent of billing.pricing)."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_a_full_month_is_billed_on_the_daily_average_of_the_plan_metric() -> None:
    plan = make_plan(included_gib="10", price_per_gib="0.05", base_fee="3.00", metric=Plan.Metric.LATEST)
    tenant = make_billed_tenant(plan=plan, name="Acme GmbH")
    for i, day in enumerate(JAN):
        # latest grows 1 GiB a day from 20 GiB; logical (not billed by this plan) is larger
        make_sample(tenant=tenant, day=day, logical=100 * GIB, latest=(20 + i) * GIB, snapshots=i + 1, groups=2)

    result = billing_period_close(period="2025-01")

    assert result.created == 1
    invoice = Invoice.objects.get(tenant=tenant)
    exact_avg = Fraction(sum(20 + i for i in range(31)), 31)  # GiB
    billed = _cents(exact_avg)
    usage = (billed - Decimal("10")) * Decimal("0.05")
    expected_total = Decimal("3.00") + usage.quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert invoice.billed_gib == billed == Decimal("35.00")
    assert invoice.billable_gib == Decimal("25.00")
    assert invoice.total == expected_total == Decimal("4.25")
    assert (invoice.samples, invoice.gaps, invoice.active_days) == (31, 0, 31)
    assert invoice.peak_gib == Decimal("50.000000")
    assert (invoice.snapshots, invoice.groups) == (31, 2)
    assert invoice.client_name == "Acme GmbH"
    assert [(line.position, line.kind, line.amount) for line in invoice.lines.order_by("position")] == [
        (1, "base_fee", Decimal("3.00")),
        (2, "usage", Decimal("1.25")),
    ]
    assert sum(line.amount for line in invoice.lines.all()) == invoice.total


def test_missing_days_carry_the_previous_value_and_are_counted_as_gaps() -> None:
    plan = make_plan(price_per_gib="1")
    tenant = make_billed_tenant(plan=plan)
    make_sample(tenant=tenant, day=dt.date(2024, 12, 31), logical=7 * GIB)  # carried into Jan 1-2
    for day in JAN[2:10]:
        make_sample(tenant=tenant, day=day, logical=10 * GIB)
    # Jan 11-20 missing (carry 10), Jan 21-31 at 40 GiB
    for day in JAN[20:]:
        make_sample(tenant=tenant, day=day, logical=40 * GIB)

    billing_period_close(period="2025-01")

    invoice = Invoice.objects.get(tenant=tenant)
    expected = Fraction(2 * 7 + 8 * 10 + 10 * 10 + 11 * 40, 31)
    assert invoice.gaps == 12
    assert invoice.samples == 19
    assert invoice.billed_gib == _cents(expected)
    assert invoice.total == _cents(Fraction(invoice.billed_gib))


def test_a_partial_month_counts_only_the_days_the_tenant_was_active() -> None:
    plan = make_plan(price_per_gib="2")
    joined = make_billed_tenant(plan=plan, activated=dt.date(2025, 1, 20))
    left = make_billed_tenant(plan=plan, activated=dt.date(2024, 6, 1), offboarded=dt.date(2025, 1, 5))
    for day in JAN:
        # Samples outside the active days (e.g. a late sample) must not count.
        make_sample(tenant=joined, day=day, logical=(5 if day >= dt.date(2025, 1, 20) else 999) * GIB)
        if day <= dt.date(2025, 1, 8):
            make_sample(tenant=left, day=day, logical=3 * GIB)

    billing_period_close(period="2025-01")

    a = Invoice.objects.get(tenant=joined)
    assert (a.first_day, a.last_day, a.active_days) == (dt.date(2025, 1, 20), dt.date(2025, 1, 31), 12)
    assert a.billed_gib == Decimal("5.00")
    assert a.total == Decimal("10.00")
    b = Invoice.objects.get(tenant=left)
    assert (b.first_day, b.last_day, b.active_days, b.samples) == (dt.date(2025, 1, 1), dt.date(2025, 1, 5), 5, 5)
    assert b.total == Decimal("6.00")


def test_a_tenant_onboarded_mid_month_without_samples_yet_is_billed_zero_usage_with_gaps() -> None:
    plan = make_plan(price_per_gib="1", base_fee="1.00")
    tenant = make_billed_tenant(plan=plan, activated=dt.date(2025, 1, 30))
    make_sample(tenant=tenant, day=dt.date(2025, 1, 31), logical=4 * GIB)

    billing_period_close(period="2025-01")

    invoice = Invoice.objects.get(tenant=tenant)
    # Jan 30 has nothing before it: 0, counted as a gap, never a made-up value.
    assert (invoice.samples, invoice.gaps) == (1, 1)
    assert invoice.billed_gib == Decimal("2.00")
    assert invoice.total == Decimal("3.00")


def test_amounts_round_half_up_per_line() -> None:
    plan = make_plan(price_per_gib="0.125", base_fee="0.10", included_gib="2")
    tenant = make_billed_tenant(plan=plan)
    for day in JAN:
        make_sample(tenant=tenant, day=day, logical=3 * GIB)

    billing_period_close(period="2025-01")

    lines = list(InvoiceLine.objects.filter(invoice__tenant=tenant).order_by("position"))
    # 1 GiB x 0.125 = 0.125 -> 0.13 (half-even would give 0.12)
    assert [line.amount for line in lines] == [Decimal("0.10"), Decimal("0.13")]
    assert Invoice.objects.get(tenant=tenant).total == Decimal("0.23")


def test_the_physical_metric_counts_days_without_gc_figures_as_gaps() -> None:
    plan = make_plan(metric=Plan.Metric.PHYSICAL, price_per_gib="1")
    tenant = make_billed_tenant(plan=plan)
    for day in JAN:
        has_gc = day.day > 1
        make_sample(tenant=tenant, day=day, logical=10 * GIB, physical=4 * GIB if has_gc else None)

    billing_period_close(period="2025-01")

    invoice = Invoice.objects.get(tenant=tenant)
    assert invoice.gaps == 1  # Jan 1: nothing known before it either, so 0
    assert invoice.billed_gib == _cents(Fraction(30 * 4, 31))
    assert "apportioned" in invoice.lines.get(kind="usage").description


def test_closing_again_changes_nothing_and_creates_nothing() -> None:
    plan = make_plan(price_per_gib="1")
    tenants = [make_billed_tenant(plan=plan) for _ in range(3)]
    for tenant in tenants:
        make_sample(tenant=tenant, day=JAN[0], logical=GIB)
    first = billing_period_close(period="2025-01")
    snapshot = list(Invoice.objects.order_by("pk").values())
    lines = InvoiceLine.objects.count()
    # New samples and a price change after the close must not touch the issued month.
    make_sample(tenant=tenants[0], day=JAN[5], logical=100 * GIB)
    Plan.objects.filter(pk=plan.pk).update(price_per_gib=Decimal("9"))

    again = billing_period_close(period="2025-01")
    call_command("billing", "close", "--period", "2025-01")

    assert first.created == 3
    assert again.created == 0
    assert again.already_closed
    assert list(Invoice.objects.order_by("pk").values()) == snapshot
    assert InvoiceLine.objects.count() == lines


def test_invoice_numbers_are_unique_and_consecutive_in_slug_order() -> None:
    plan = make_plan()
    for slug in ["zeta", "alpha", "mike"]:
        make_billed_tenant(plan=plan, slug=slug)
    billing_period_close(period="2025-01")
    billing_period_close(period="2025-02")

    numbers = list(Invoice.objects.order_by("number").values_list("tenant_slug", "number"))
    assert len({n for _, n in numbers}) == 6
    year = timezone.now().year
    assert [n for _, n in numbers] == [f"INV-{year}-{i:06d}" for i in range(1, 7)]
    assert [s for s, _ in numbers[:3]] == ["alpha", "mike", "zeta"]


def test_a_tenant_without_plan_is_not_billed_but_reported() -> None:
    make_billed_tenant(plan=None, slug="noplan")
    result = billing_period_close(period="2025-01")
    assert result.created == 0
    assert result.skipped_no_plan == ["noplan"]
    assert BillingPeriod.objects.get(start=dt.date(2025, 1, 1)).notes["skipped_no_plan"] == ["noplan"]


def test_a_month_that_is_not_over_cannot_be_closed() -> None:
    with pytest.raises(BillingError, match="not over"):
        billing_period_close(period="2025-01", today=dt.date(2025, 1, 31))
    assert not Invoice.objects.exists()


def test_an_issued_invoice_can_be_neither_edited_nor_deleted() -> None:
    make_billed_tenant(plan=make_plan(base_fee="5"))
    billing_period_close(period="2025-01")
    invoice = Invoice.objects.get()
    invoice.total = Decimal("1.00")
    with pytest.raises(DocumentFrozen):
        invoice.save()
    with pytest.raises(DocumentFrozen):
        invoice.delete()
    line = invoice.lines.first()
    line.amount = Decimal("0")
    with pytest.raises(DocumentFrozen):
        line.save()
    assert Invoice.objects.get().total == Decimal("5.00")


def test_the_close_writes_an_audit_row_with_the_totals(accounting_user) -> None:
    make_billed_tenant(plan=make_plan(base_fee="5", currency="CHF"))
    billing_period_close(period="2025-01", actor=accounting_user)
    event = AuditEvent.objects.get(action="billing.period_closed")
    assert event.actor == accounting_user
    assert event.detail["totals"] == {"CHF": "5.00"}


# --- corrections -------------------------------------------------------------------------


def _closed_invoice() -> Invoice:
    plan = make_plan(price_per_gib="1", name="standard")
    tenant = make_billed_tenant(plan=plan)
    for day in JAN:
        make_sample(tenant=tenant, day=day, logical=10 * GIB)
    billing_period_close(period="2025-01")
    return Invoice.objects.get(tenant=tenant)


def test_a_correction_is_a_credit_note_and_a_new_invoice_never_an_edit(accounting_user) -> None:
    original = _closed_invoice()
    before = Invoice.objects.filter(pk=original.pk).values().get()
    # A backfilled day showed the tenant really had 41 GiB on Jan 31.
    sample = original.tenant.usage_samples.get(day=JAN[-1])
    type(sample).objects.filter(pk=sample.pk).update(logical_bytes=41 * GIB)

    result = invoice_correct(invoice=original, reason="Jan 31 sample was wrong", actor=accounting_user)

    original.refresh_from_db()
    after = Invoice.objects.filter(pk=original.pk).values().get()
    assert after == {**before, "status": Invoice.Status.CREDITED}  # only the status moved
    assert result.credit_note.amount == original.total == Decimal("10.00")
    assert result.credit_note.invoice == original
    new = result.invoice
    assert new.replaces == original
    assert new.number != original.number
    assert new.billed_gib == Decimal("11.00")
    assert new.total == Decimal("11.00")
    assert new.note == "Jan 31 sample was wrong"
    assert AuditEvent.objects.filter(action="billing.invoice_corrected", actor=accounting_user).exists()


def test_a_credited_invoice_cannot_be_corrected_twice(accounting_user) -> None:
    original = _closed_invoice()
    invoice_correct(invoice=original, reason="cancel", actor=accounting_user, reissue=False)
    with pytest.raises(BillingError, match="already credited"):
        invoice_correct(invoice=original, reason="again", actor=accounting_user)
    assert CreditNote.objects.count() == 1
    assert Invoice.objects.count() == 1


def test_a_correction_that_changes_nothing_is_refused(accounting_user) -> None:
    original = _closed_invoice()
    with pytest.raises(BillingError, match="same invoice"):
        invoice_correct(invoice=original, reason="no reason", actor=accounting_user)
    assert not CreditNote.objects.exists()
    original.refresh_from_db()
    assert original.status == Invoice.Status.ISSUED


def test_a_correction_can_apply_another_plan_from_the_command_line() -> None:
    original = _closed_invoice()
    make_plan(name="cheaper", price_per_gib="0.5")
    call_command("billing", "correct", "--invoice", original.number, "--reason", "wrong plan", "--plan", "cheaper")
    new = Invoice.objects.get(replaces=original)
    assert (new.plan_name, new.total) == ("cheaper", Decimal("5.00"))
    assert CreditNote.objects.get().number.startswith("CN-")


def test_a_correction_can_fix_the_client_name_alone(accounting_user) -> None:
    original = _closed_invoice()
    type(original.tenant).objects.filter(pk=original.tenant_id).update(name="Acme Holding AG")
    new = invoice_correct(invoice=original, reason="legal name", actor=accounting_user).invoice
    assert (new.client_name, new.total) == ("Acme Holding AG", original.total)
