"""The staff overview at /: what each role sees, each tile's figure and link, the month's
projection, the datastore forecast, and a query count that does not grow with tenants."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.models import Alert, QuotaState
from billing.models import BillingPeriod, Invoice
from billing.pricing import month_bounds, previous_month
from overview.selectors import cockpit
from plans.models import Plan
from tenants.models import OnboardingRun, PbsHost, Tenant
from tests.billing.factories import make_plan
from tests.factories import make_datastore, make_host, make_tenant
from tests.overview.world import GIB, alert, failed_run, quota, sample, stale_offsite

pytestmark = pytest.mark.django_db

TIB = 2**40


def _tile(body: str, name: str) -> tuple[str, str]:
    """(href, figure) of one tile."""
    match = re.search(rf'<a class="panel tile" id="tile-{name}" href="([^"]*)">.*?<p class="figure[^"]*">([^<]*)</p>',
                      body, re.S)  # fmt: skip
    assert match, f"no tile {name}"
    return match.group(1).replace("&amp;", "&"), match.group(2)


@pytest.fixture
def store() -> Any:
    return make_datastore(host=make_host(name="pbs-a"), name="store1", total_bytes=10 * TIB,
                          used_bytes=6 * TIB, avail_bytes=4 * TIB)  # fmt: skip


def test_staff_see_every_tile_with_its_figure_and_filtered_link(client: Any, staff_user: Any, store: Any) -> None:
    a = make_tenant(slug="alpha", datastore=store)
    b = make_tenant(slug="bravo", datastore=store)
    c = make_tenant(slug="charlie", datastore=store)
    failed_run(a)
    OnboardingRun.objects.create(tenant=b, status=OnboardingRun.Status.FAILED)
    OnboardingRun.objects.create(tenant=b, status=OnboardingRun.Status.SUCCEEDED)  # b was retried: fine now
    alert(a, severity=Alert.Severity.CRITICAL, kind=Alert.Kind.QUOTA_ENFORCED)
    alert(b, severity=Alert.Severity.WARNING)
    alert(c, severity=Alert.Severity.WARNING, status=Alert.Status.RESOLVED)
    quota(a, state=QuotaState.State.ENFORCED, usage=12 * GIB, soft=10 * GIB)
    quota(b, state=QuotaState.State.OVER, usage=11 * GIB, soft=10 * GIB)
    quota(c, state=QuotaState.State.WARNING, usage=9 * GIB, soft=10 * GIB)
    stale_offsite(c)
    Tenant.objects.filter(pk=c.pk).update(drift_checked_at=timezone.now(), drift_findings=[{"kind": "acl"}])
    PbsHost.objects.filter(pk=store.host_id).update(drift_checked_at=timezone.now(), drift_findings=[{"kind": "x"}])
    client.force_login(staff_user)
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert _tile(body, "runs") == ("#runs", "1")
    assert "Give the automation token Sys.Modify." in body, "the failed run shows its hint"
    assert _tile(body, "alerts") == ("/alerts/?status=open", "2")
    assert "1 critical · 1 warning · 0 info" in body
    assert _tile(body, "quota") == ("/tenants/?quota=over&sort=-quota", "2")
    assert "1 in grace · 1 enforced · 1 near the limit" in body
    assert _tile(body, "offsite") == ("/tenants/?offsite=stale", "1")
    assert _tile(body, "drift") == ("/tenants/?drift=found", "1")
    assert "hosts: pbs-a" in body
    # The links lead to lists that show exactly those tenants.
    quota_list = client.get("/tenants/?quota=over&sort=-quota").content.decode()
    assert "/tenants/alpha/" in quota_list
    assert "/tenants/bravo/" in quota_list
    assert "/tenants/charlie/" not in quota_list
    assert 'id="month"' in body, "an admin sees the money part too"


def test_the_money_part_is_for_admins_and_accounting_only(
    client: Any, staff_user: Any, operator_user: Any, accounting_user: Any, client_a: Any
) -> None:
    client.force_login(accounting_user)
    body = client.get("/").content.decode()
    assert 'id="month"' in body
    assert 'id="datastores"' not in body
    assert 'id="attention"' not in body
    client.force_login(operator_user)
    body = client.get("/").content.decode()
    assert 'id="month"' not in body
    assert 'id="datastores"' in body
    client.force_login(client_a)
    response = client.get("/")
    assert response.status_code == 302, "clients keep their own start page"
    assert response.url == "/my/"


def test_this_month_projects_each_tenant_with_its_plan_against_last_month(
    client: Any, accounting_user: Any, store: Any
) -> None:
    today = dt.date(2026, 3, 10)
    eur = make_plan(name="EUR", metric=Plan.Metric.LOGICAL, included_gib="5", price_per_gib="1", base_fee="2")
    chf = make_plan(name="CHF", metric=Plan.Metric.LATEST, price_per_gib="0.5", minimum_charge="20", currency="CHF")
    a = make_tenant(slug="eur-a", datastore=store, plan=eur)
    b = make_tenant(slug="chf-b", datastore=store, plan=chf)
    gone = make_tenant(slug="no-plan", datastore=store)
    for day in range(1, 11):
        sample(a, today.replace(day=day), logical=(10 + (day % 2)) * GIB)  # average 10.5 GiB
        sample(b, today.replace(day=day), logical=100 * GIB, latest=8 * GIB)  # bills latest: 8 GiB
    sample(a, dt.date(2026, 2, 28), logical=99 * GIB)  # last month: not in this month's figures
    start, end = month_bounds(previous_month(today))
    period = BillingPeriod.objects.create(start=start, end=end, status=BillingPeriod.Status.CLOSED)
    for tenant, total, currency, status in ((a, "6.00", "EUR", "issued"), (b, "30.00", "CHF", "issued"),
                                            (gone, "99.00", "CHF", "credited")):  # fmt: skip
        Invoice.objects.create(
            period=period, tenant=tenant, number=f"INV-{tenant.slug}-{status}", status=status, issued_at=timezone.now(),
            client_name=tenant.name, tenant_slug=tenant.slug, plan_name="p", metric="logical", currency=currency,
            included_gib=0, unit_price=0, base_fee=0, minimum_charge=0, first_day=start, last_day=end,
            active_days=28, samples=28, gaps=0, snapshots=0, groups=0, avg_bytes=0, avg_gib=0, peak_gib=0,
            billed_gib=0, billable_gib=0,
            total=Decimal(total),
        )  # fmt: skip
    month = cockpit.month_so_far(today=today)
    by = {m.currency: m for m in month.currencies}
    assert month.period == "2026-03"
    assert month.last_period == "2026-02"
    assert month.days_measured == 10
    # EUR: 2 base + (10.5 - 5) x 1 = 7.50; 105 GiB-days. Last month 6.00 -> +1.50 (+25 %).
    assert (by["EUR"].tenants, by["EUR"].gib_days, by["EUR"].projected) == (1, Decimal("105.00"), Decimal("7.50"))
    assert (by["EUR"].change, by["EUR"].change_percent) == (Decimal("1.50"), Decimal("25.0"))
    # CHF: 8 GiB x 0.5 = 4.00, topped up to the 20.00 minimum; the credited invoice does not count.
    assert (by["CHF"].gib_days, by["CHF"].projected, by["CHF"].last_month) == (
        Decimal("80.00"), Decimal("20.00"), Decimal("30.00"))  # fmt: skip
    assert by["CHF"].change == Decimal("-10.00")


def test_the_datastore_forecast_follows_the_disk_trend(store: Any) -> None:
    full_soon = make_datastore(host=store.host, name="store2", total_bytes=TIB, used_bytes=TIB - 10 * GIB,
                               avail_bytes=10 * GIB)  # fmt: skip
    idle = make_datastore(host=store.host, name="idle", total_bytes=TIB, used_bytes=GIB, avail_bytes=TIB - GIB)
    never = make_datastore(host=store.host, name="never")
    today = timezone.localdate()
    on = {s: make_tenant(datastore=s) for s in (store, full_soon, idle)}
    for i in range(30):
        day = today - dt.timedelta(days=29 - i)
        sample(on[store], day, logical=GIB, disk=5 * TIB + i * 10 * GIB)  # +10 GiB a day: 4 TiB in 409 days
        sample(on[full_soon], day, logical=GIB, disk=500 * GIB + i * 2 * GIB)  # +2 GiB a day: 10 GiB in 5
        sample(on[idle], day, logical=GIB, disk=GIB + (i % 2) * 1024)  # noise, not growth
    by_name = {d.datastore.name: d for d in cockpit.datastore_fill(today=today)}
    assert by_name["store2"].forecast.days_until_full == 5
    assert by_name["store1"].forecast.days_until_full == 409
    assert by_name["store1"].fill_percent == 60
    assert by_name["idle"].forecast.state == "not growing"
    assert by_name["never"].forecast.state == "no trend"
    assert [d.datastore.name for d in cockpit.datastore_fill(today=today)][:2] == ["store2", "store1"]
    assert never.pk  # listed, without figures


def test_the_datastore_trend_falls_back_to_scaled_logical_growth(store: Any) -> None:
    tenant = make_tenant(datastore=store)
    today = timezone.localdate()
    for i in range(10):
        sample(tenant, today - dt.timedelta(days=9 - i), logical=(3 + i) * TIB // 4)  # ends at 3 TiB logical
    fill = cockpit.datastore_fill(today=today)[0]
    # Used 6 TiB for 3 TiB logical: x2; logical grows 256 GiB a day -> disk 512 GiB a day; 4 TiB free -> 8 days.
    assert fill.basis == "logical"
    assert fill.forecast.days_until_full == 8


def test_the_top_ten_are_the_fastest_growing_tenants(client: Any, staff_user: Any, store: Any) -> None:
    today = timezone.localdate()
    for n in range(12):
        tenant = make_tenant(slug=f"grow{n:02d}", datastore=store)
        sample(tenant, today - dt.timedelta(days=30), logical=GIB)
        sample(tenant, today, logical=GIB + n * GIB)
    flat = make_tenant(slug="flat", datastore=store)
    sample(flat, today, logical=50 * GIB)
    assert [t.slug for t in cockpit.top_growth(today=today)] == [f"grow{n:02d}" for n in range(11, 1, -1)]
    client.force_login(staff_user)
    body = client.get("/").content.decode()
    growth = body.split('id="growth"', 1)[1]
    assert "grow11" in growth
    assert "grow01" not in growth
    assert "flat" not in growth
    assert "+11.0\xa0GiB" in growth


def _overview_queries(client: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_query_count_does_not_grow_from_10_to_200_tenants(client: Any, staff_user: Any, store: Any) -> None:
    plan = make_plan(price_per_gib="1")
    today = timezone.localdate()

    def add(start: int, count: int) -> None:
        for n in range(start, start + count):
            tenant = make_tenant(slug=f"t{n:03d}", datastore=store, plan=plan)
            for back in (0, 1, 31):
                sample(tenant, today - dt.timedelta(days=back), logical=(n + 1) * GIB, disk=TIB)
            if n % 3 == 0:
                alert(tenant)
                quota(tenant, state=QuotaState.State.OVER, usage=GIB, soft=GIB)
            if n % 5 == 0:
                failed_run(tenant)

    add(0, 10)
    client.force_login(staff_user)
    few = _overview_queries(client)
    add(10, 190)
    assert _overview_queries(client) == few
    assert few <= 30, few
    # Unchanged data: the sample-derived tiles come from the memo, not from the samples.
    again = _overview_queries(client)
    assert again < few


def test_the_memoised_tiles_follow_every_new_sample_at_once(client: Any, staff_user: Any, store: Any) -> None:
    today = timezone.localdate()
    tenant = make_tenant(slug="jumper", datastore=store)
    sample(tenant, today - dt.timedelta(days=20), logical=GIB)
    client.force_login(staff_user)
    assert "jumper" not in client.get("/").content.decode().split('id="growth"', 1)[1]
    sample(tenant, today, logical=9 * GIB)  # today's metering
    growth = client.get("/").content.decode().split('id="growth"', 1)[1]
    assert "jumper" in growth
    assert "+8.0\xa0GiB" in growth


def test_the_overview_works_without_its_cache(client: Any, staff_user: Any, store: Any, monkeypatch: Any) -> None:
    """The memo only saves work: with the cache down the figures are computed, not a 500."""

    def down(*_args: Any, **_kwargs: Any) -> None:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cockpit.cache, "get", down)
    monkeypatch.setattr(cockpit.cache, "set", down)
    today = timezone.localdate()
    tenant = make_tenant(slug="solo", datastore=store)
    sample(tenant, today - dt.timedelta(days=3), logical=GIB)
    sample(tenant, today, logical=3 * GIB)
    client.force_login(staff_user)
    response = client.get("/")
    assert response.status_code == 200
    assert "+2.0\xa0GiB" in response.content.decode().split('id="growth"', 1)[1]
