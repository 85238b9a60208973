"""The billing REST API: roles, a client's own tenant only, decimals as strings."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.test import APIClient

from billing.models import CreditNote, Invoice
from billing.services.close import billing_period_close
from tests.billing.factories import GIB, days_of, make_billed_tenant, make_plan, make_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def billed(tenant_a, tenant_b):
    plan = make_plan(price_per_gib="0.50", base_fee="2.00", name="std")
    for tenant in (tenant_a, tenant_b):
        tenant.plan = plan
        tenant.activated_at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        tenant.save()
        for day in days_of(dt.date(2025, 1, 1), dt.date(2025, 1, 31)):
            make_sample(tenant=tenant, day=day, logical=4 * GIB)
    billing_period_close(period="2025-01")
    return Invoice.objects.get(tenant=tenant_a), Invoice.objects.get(tenant=tenant_b)


def test_accounting_lists_periods_with_totals_per_currency(api, accounting_user, billed) -> None:
    api.force_authenticate(accounting_user)
    data = api.get("/api/v1/billing/periods/").json()
    jan = next(p for p in data if p["period"] == "2025-01")
    assert jan["status"] == "closed"
    assert jan["invoices"] == 2
    assert jan["totals"] == {"EUR": "8.00"}


def test_the_rows_endpoint_carries_the_csv_columns(api, accounting_user, billed) -> None:
    api.force_authenticate(accounting_user)
    data = api.get("/api/v1/billing/periods/2025-01/rows/").json()
    assert data["count"] == 2
    row = data["results"][0]
    assert list(row) == [
        "client", "datastore", "namespace", "size_gb", "month", "host", "tenant_slug", "metric", "avg_gib",
        "peak_gib", "samples", "gaps", "snapshots", "groups", "included_gib", "billable_gib", "unit_price",
        "base_fee", "amount", "currency", "invoice_number",
    ]  # fmt: skip
    assert (row["tenant_slug"], row["size_gb"], row["amount"], row["month"]) == ("tenant-a", "4.00", "4.00", "2025-01")


def test_a_client_reads_its_own_invoice_and_usage_only(api, client_a, billed, tenant_a, tenant_b) -> None:
    own, other = billed
    api.force_authenticate(client_a)
    assert api.get(f"/api/v1/billing/invoices/{own.number}/").json()["total"] == "4.00"
    assert api.get(f"/api/v1/billing/invoices/{other.number}/").status_code == 404
    assert api.get(f"/api/v1/billing/tenants/{tenant_a.pk}/usage/?days=3").status_code == 200
    assert api.get(f"/api/v1/billing/tenants/{tenant_b.pk}/usage/").status_code == 404
    assert api.get(f"/api/v1/billing/tenants/{tenant_b.pk}/invoices/").status_code == 404
    assert api.get("/api/v1/billing/periods/").status_code == 403
    assert api.post(f"/api/v1/billing/invoices/{own.number}/correct/", {"reason": "x"}).status_code == 403


def test_an_operator_has_no_billing_api(api, operator_user, billed) -> None:
    api.force_authenticate(operator_user)
    assert api.get("/api/v1/billing/periods/").status_code == 403
    assert api.get(f"/api/v1/billing/invoices/{billed[0].number}/").status_code == 403


def test_usage_points_are_daily_with_nulls_for_missing_days(api, accounting_user, tenant_a) -> None:
    api.force_authenticate(accounting_user)
    from django.utils import timezone

    today = timezone.localdate()
    make_sample(tenant=tenant_a, day=today, logical=2 * GIB, physical=GIB)
    points = api.get(f"/api/v1/billing/tenants/{tenant_a.pk}/usage/?days=2").json()
    assert [p["day"] for p in points] == [str(today - dt.timedelta(days=1)), str(today)]
    assert points[0]["logical_bytes"] is None
    assert points[1] == {
        "day": str(today),
        "logical_bytes": 2 * GIB,
        "latest_bytes": 2 * GIB,
        "physical_estimate_bytes": GIB,
        "snapshots": 1,
    }


def test_accounting_corrects_an_invoice_through_the_api(api, accounting_user, billed) -> None:
    own, _ = billed
    make_plan(name="cheap", price_per_gib="0.25")
    api.force_authenticate(accounting_user)
    response = api.post(
        f"/api/v1/billing/invoices/{own.number}/correct/", {"reason": "plan change", "plan": "cheap"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["credited"] == "4.00"
    assert body["total"] == "1.00"
    assert CreditNote.objects.get().number == body["credit_note"]
    again = api.post(f"/api/v1/billing/invoices/{own.number}/correct/", {"reason": "again"}, format="json")
    assert again.status_code == 409


def test_closing_an_unfinished_month_is_refused(api, accounting_user) -> None:
    api.force_authenticate(accounting_user)
    from django.utils import timezone

    current = f"{timezone.localdate():%Y-%m}"
    response = api.post(f"/api/v1/billing/periods/{current}/close/")
    assert response.status_code == 400
    assert "not over" in response.json()["detail"]


def test_the_rows_endpoint_costs_the_same_queries_for_more_invoices(
    api, accounting_user, django_assert_max_num_queries
) -> None:
    plan = make_plan(base_fee="1")
    for _ in range(30):
        make_billed_tenant(plan=plan)
    billing_period_close(period="2025-01")
    api.force_authenticate(accounting_user)
    with django_assert_max_num_queries(6):
        assert api.get("/api/v1/billing/periods/2025-01/rows/?limit=50").status_code == 200
