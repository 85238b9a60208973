"""Accounting pages: access by role, constant query counts, invoices, chart partial."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import CreditNote, Invoice, MeteringGap, MeteringHostResult, MeteringRun
from billing.selectors.usage import usage_series
from billing.services.close import billing_period_close
from tests.billing.factories import GIB, days_of, make_billed_tenant, make_plan, make_sample
from tests.factories import make_host

pytestmark = pytest.mark.django_db


def _bill(n: int, period: str = "2025-01") -> None:
    plan = make_plan(price_per_gib="1", base_fee="1")
    for _ in range(n):
        tenant = make_billed_tenant(plan=plan)
        make_sample(tenant=tenant, day=dt.date(2025, 1, 1), logical=GIB)
    billing_period_close(period=period)


def _last_run(n_gaps: int) -> None:
    host = make_host()
    run = MeteringRun.objects.create(day=dt.date(2025, 2, 1), status=MeteringRun.Status.PARTIAL)
    MeteringHostResult.objects.create(
        run=run, host=host, first_tenant_id=1, status=MeteringHostResult.Status.FAILED, error="refused"
    )
    for tenant in [make_billed_tenant(plan=None) for _ in range(n_gaps)]:
        MeteringGap.objects.create(tenant=tenant, day=run.day, run=run, host_name=host.name, reason="refused")


@pytest.mark.parametrize("name", ["billing:periods", "billing:metering", "billing:plans"])
def test_accounting_and_admins_see_billing_pages(client, accounting_user, staff_user, name: str) -> None:
    for user in (accounting_user, staff_user):
        client.force_login(user)
        assert client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("role_fixture", ["operator_user", "client_a"])
def test_other_roles_are_refused(client, request, role_fixture: str) -> None:
    _bill(1)
    client.force_login(request.getfixturevalue(role_fixture))
    for url in (
        reverse("billing:periods"),
        reverse("billing:period", args=["2025-01"]),
        reverse("billing:metering"),
        reverse("billing:plans"),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("billing:close", args=["2025-02"])).status_code == 403


def test_anonymous_users_are_sent_to_sign_in(client) -> None:
    response = client.get(reverse("billing:periods"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_accounting_page_costs_the_same_queries_for_3_or_30_tenants(client, accounting_user) -> None:
    client.force_login(accounting_user)
    _bill(3, "2025-01")
    _last_run(3)
    small = _count(client, reverse("billing:periods"))
    small_period = _count(client, reverse("billing:period", args=["2025-01"]))
    _bill(30, "2025-02")
    _last_run(30)
    billing_period_close(period="2024-12")
    assert _count(client, reverse("billing:periods")) == small
    assert _count(client, reverse("billing:period", args=["2025-02"])) == small_period


def test_the_periods_page_shows_totals_and_collection_problems(client, accounting_user) -> None:
    _bill(2)
    _last_run(1)
    client.force_login(accounting_user)
    page = client.get(reverse("billing:periods")).content.decode()
    assert "2025-01" in page
    assert "4.00 EUR" in page  # 2 x (1 base + 1 GiB x 1)
    assert "refused" in page
    assert reverse("billing:export", args=["2025-01"]) in page


def test_the_period_page_answers_htmx_with_the_table_only(client, accounting_user) -> None:
    _bill(2)
    client.force_login(accounting_user)
    response = client.get(reverse("billing:period", args=["2025-01"]), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'id="invoice-table"' in body
    assert "<html" not in body


def test_closing_from_the_page_runs_the_close(client, accounting_user, settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    make_billed_tenant(plan=make_plan(base_fee="7"))
    client.force_login(accounting_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("billing:close", args=["2025-01"]))
    assert response.status_code == 302
    assert Invoice.objects.get().total == 7


def test_a_client_opens_its_own_invoice_but_not_another_tenants(client, client_a, client_b, tenant_a, tenant_b):
    plan = make_plan(base_fee="3")
    for tenant in (tenant_a, tenant_b):
        tenant.plan = plan
        tenant.activated_at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        tenant.save()
    billing_period_close(period="2025-01")
    own = Invoice.objects.get(tenant=tenant_a)
    other = Invoice.objects.get(tenant=tenant_b)

    client.force_login(client_a)
    assert client.get(reverse("billing:invoice", args=[own.number])).status_code == 200
    assert client.get(reverse("billing:invoice", args=[other.number])).status_code == 404
    assert client.get(reverse("billing:invoice_correct", args=[own.number])).status_code == 403


def test_an_operator_cannot_open_invoices(client, operator_user) -> None:
    _bill(1)
    client.force_login(operator_user)
    assert client.get(reverse("billing:invoice", args=[Invoice.objects.get().number])).status_code == 403


def test_accounting_corrects_an_invoice_from_its_page(client, accounting_user) -> None:
    _bill(1)
    original = Invoice.objects.get()
    original.tenant.usage_samples.update(logical_bytes=3 * GIB)
    client.force_login(accounting_user)
    response = client.post(
        reverse("billing:invoice_correct", args=[original.number]), {"reason": "resampled", "reissue": "on"}
    )
    assert response.status_code == 302
    new = Invoice.objects.get(replaces=original)
    assert response["Location"] == reverse("billing:invoice", args=[new.number])
    assert CreditNote.objects.get().invoice == original
    page = client.get(reverse("billing:invoice", args=[original.number])).content.decode()
    assert "credited" in page
    assert new.number in page


def test_the_usage_chart_is_an_svg_with_three_metrics_and_no_inline_style() -> None:
    tenant = make_billed_tenant(plan=None)
    today = dt.date(2025, 3, 31)
    for i, day in enumerate(days_of(dt.date(2025, 1, 1), today)):
        if day.day == 15:
            continue  # a gap
        make_sample(tenant=tenant, day=day, logical=(10 + i) * GIB, latest=5 * GIB, physical=3 * GIB)
    series = usage_series(tenant.pk, days=90, today=today)

    html = render_to_string("billing/_usage_chart.html", {"series": series})

    assert "<svg" in html
    assert not re.search(r"\sstyle=", html)
    for key in ("logical", "latest", "physical"):
        assert f"usage-line-{key}" in html
    assert "apportioned" in html
    assert series.gap_days == 3  # Jan 15, Feb 15, Mar 15 (the window is Jan 1 to Mar 31)
