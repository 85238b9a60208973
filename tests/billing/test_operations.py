"""Plans, late invoices, stale runs and the partials other pages embed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from billing.models import Invoice, MeteringHostResult, MeteringRun
from billing.selectors.usage import usage_series
from billing.services.base import BillingError
from billing.services.close import billing_period_close
from billing.services.corrections import invoice_issue_late
from billing.services.metering import metering_run_start
from plans.models import Plan
from tests.billing.factories import GIB, make_billed_tenant, make_plan, make_sample
from tests.factories import make_host

pytestmark = pytest.mark.django_db


def test_accounting_creates_a_plan_and_the_change_is_audited(client, accounting_user) -> None:
    client.force_login(accounting_user)
    response = client.post(
        reverse("billing:plan_new"),
        {
            "name": "Business",
            "currency": "CHF",
            "metric": "latest",
            "included_gib": "100",
            "price_per_gib": "0.015",
            "base_fee": "10",
            "minimum_charge": "0",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    plan = Plan.objects.get(name="Business")
    assert (plan.currency, plan.price_per_gib) == ("CHF", Decimal("0.015"))
    event = AuditEvent.objects.get(action="billing.plan_created")
    assert event.actor == accounting_user
    assert Decimal(event.detail["price_per_gib"]) == Decimal("0.015")


def test_a_plan_refuses_negative_prices_and_bad_currencies(client, accounting_user) -> None:
    client.force_login(accounting_user)
    response = client.post(
        reverse("billing:plan_new"),
        {"name": "Bad", "currency": "eur", "metric": "logical", "included_gib": "0", "price_per_gib": "-1",
         "base_fee": "0", "minimum_charge": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert not Plan.objects.filter(name="Bad").exists()
    form = response.context["form"]
    assert set(form.errors) == {"currency", "price_per_gib"}


def test_a_tenant_skipped_for_lack_of_a_plan_is_billed_late_once(accounting_user) -> None:
    tenant = make_billed_tenant(plan=None, slug="late")
    make_sample(tenant=tenant, day=dt.date(2025, 1, 10), logical=2 * GIB)
    billing_period_close(period="2025-01")
    tenant.plan = make_plan(price_per_gib="1")
    tenant.save()

    call_command("billing", "issue-late", "--period", "2025-01", "--tenant", "late")

    invoice = Invoice.objects.get(tenant=tenant)
    # Jan 1-9 carry nothing known (0), Jan 10-31 at 2 GiB: 22 x 2 / 31
    assert invoice.billed_gib == Decimal("1.42")
    assert (invoice.samples, invoice.gaps) == (1, 30)
    with pytest.raises(BillingError, match="already has an invoice"):
        invoice_issue_late(tenant=tenant, period="2025-01", actor=accounting_user)


def test_a_run_left_running_by_a_dead_worker_is_failed_by_the_next_run() -> None:
    host = make_host()
    stale = MeteringRun.objects.create(day=dt.date(2025, 1, 1))
    MeteringRun.objects.filter(pk=stale.pk).update(started_at=timezone.now() - dt.timedelta(hours=7))
    MeteringHostResult.objects.create(run=stale, host=host, first_tenant_id=1, tenant_ids=[1])

    metering_run_start(day=dt.date(2025, 1, 2))

    stale.refresh_from_db()
    assert stale.status == MeteringRun.Status.FAILED
    result = stale.host_results.get()
    assert (result.status, result.error) == ("failed", "never finished (worker lost)")


def test_the_embeddable_partials_render_for_a_tenant_in_constant_queries(
    tenant_a, django_assert_num_queries, rf, accounting_user
) -> None:
    make_sample(tenant=tenant_a, day=timezone.localdate(), logical=5 * GIB)
    template = Template("{% load billing_tags %}{% usage_chart tenant.pk %}{% tenant_invoice_list tenant.pk %}")
    context = Context({"tenant": tenant_a, "user": accounting_user, "is_accounting": True})
    # The first sample ever (days before it are not gaps), the samples, the invoices.
    with django_assert_num_queries(3):
        html = template.render(context)
    assert "<svg" in html
    assert "5.00 GiB" in html
    assert "No invoices yet." in html


def test_the_usage_series_has_a_point_per_day_and_never_fills_gaps(tenant_a) -> None:
    today = dt.date(2025, 3, 10)
    make_sample(tenant=tenant_a, day=today - dt.timedelta(days=2), logical=GIB)
    series = usage_series(tenant_a.pk, days=5, today=today)
    assert [p.day for p in series.points] == [today - dt.timedelta(days=i) for i in range(4, -1, -1)]
    assert [p.logical for p in series.points] == [None, None, GIB, None, None]
    # The two days before the first sample ever were not measured yet: not gaps.
    assert series.gap_days == 2
    assert series.latest.day == today - dt.timedelta(days=2)


def test_the_usage_chart_of_a_tenant_never_measured_is_a_sentence_not_empty_axes(tenant_a) -> None:
    html = Template("{% load billing_tags %}{% usage_chart tenant.pk %}").render(Context({"tenant": tenant_a}))
    assert "<svg" not in html
    assert "No usage measured yet" in html
