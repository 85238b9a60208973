"""The staff tenant list: usage, growth, quota, newest backup and alerts columns; sorting by
each; filters kept in the URL and in every link; the filtered list as CSV; a constant number
of queries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, QuotaState
from plans.models import Plan
from tenants.models import Tenant
from tests.billing.factories import make_plan
from tests.factories import make_datastore, make_host, make_tenant
from tests.overview.world import GIB, alert, backup_checked, quota, sample, stale_offsite

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _slugs(body: str) -> list[str]:
    """Tenant slugs in the order the table shows them (first cell of each body row)."""
    tbody = body.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>\s*<td>(?:<a [^>]*>)?([a-z0-9-]+)", tbody)


@pytest.fixture
def world(db: None) -> dict[str, Tenant]:
    """Three tenants on one datastore with 31 days of samples each.

    - grower: logical plan, 10 GiB -> 40 GiB over 30 days, 2 open alerts, 120 % of soft quota
    - steady: "latest" plan (bills latest_bytes: 5 GiB flat while logical is 50 GiB), 40 %
    - shrinker: no plan (logical), 30 GiB -> 20 GiB, no quota state, backup long ago
    """
    today = timezone.localdate()
    store = make_datastore(host=make_host(name="pbs-x"), name="store1")
    logical = make_plan(name="Logical", metric=Plan.Metric.LOGICAL)
    latest = make_plan(name="Latest", metric=Plan.Metric.LATEST)
    grower = make_tenant(slug="grower", name="Grower AG", datastore=store, plan=logical)
    steady = make_tenant(slug="steady", name="Steady Ltd", datastore=store, plan=latest)
    shrinker = make_tenant(slug="shrinker", name="=HYPERLINK(1)", datastore=store)
    now = timezone.now()
    for i in range(31):
        day = today - dt.timedelta(days=30 - i)
        sample(grower, day, logical=10 * GIB + i * GIB, newest_backup_at=now - dt.timedelta(hours=5))
        sample(steady, day, logical=50 * GIB, latest=5 * GIB, newest_backup_at=now - dt.timedelta(hours=30))
        sample(shrinker, day, logical=30 * GIB - i * GIB // 3, newest_backup_at=now - dt.timedelta(days=9))
    alert(grower, severity=Alert.Severity.CRITICAL, kind=Alert.Kind.QUOTA_OVER)
    alert(grower, severity=Alert.Severity.WARNING)
    alert(steady, status=Alert.Status.RESOLVED)
    quota(grower, state=QuotaState.State.OVER, usage=40 * GIB, soft=int(33.4 * GIB))
    quota(steady, state=QuotaState.State.OK, usage=2 * GIB, soft=5 * GIB)
    backup_checked(steady, now - dt.timedelta(hours=2))  # the hourly check is newer than the sample
    return {"grower": grower, "steady": steady, "shrinker": shrinker}


def test_the_list_shows_usage_growth_quota_backup_age_and_alerts(client: Any, staff_user: Any, world: Any) -> None:
    client.force_login(staff_user)
    body = client.get(reverse("tenants:list")).content.decode()
    rows = dict(re.findall(r'<tr>\s*<td><a href="/tenants/([a-z]+)/">.*?</a></td>(.*?)</tr>',
                                                  body, re.S))  # fmt: skip
    nb = "\xa0"
    assert f"40.0{nb}GiB" in rows["grower"]
    assert f"+30.0{nb}GiB" in rows["grower"]
    assert "119&nbsp;%" in rows["grower"]  # 40 / 33.4
    assert '<span class="badge warn">2</span>' in rows["grower"]
    assert "5 h" in rows["grower"]
    # The "latest" plan bills latest_bytes, not the 50 GiB of logical bytes.
    assert f"5.0{nb}GiB" in rows["steady"]
    assert f"50.0{nb}GiB" not in rows["steady"]
    assert "40&nbsp;%" in rows["steady"]
    assert "2 h" in rows["steady"], "the hourly backup check wins over an older sample"
    assert f"-10.0{nb}GiB" in rows["shrinker"]
    assert "9 d" in rows["shrinker"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("usage", ["steady", "shrinker", "grower"]),
        ("-usage", ["grower", "shrinker", "steady"]),
        ("-growth", ["grower", "steady", "shrinker"]),
        ("growth", ["shrinker", "steady", "grower"]),
        ("-quota", ["grower", "steady", "shrinker"]),  # no quota figure sorts last
        ("backup", ["steady", "grower", "shrinker"]),  # youngest backup first
        ("-backup", ["shrinker", "grower", "steady"]),
        ("-alerts", ["grower", "shrinker", "steady"]),
        ("-slug", ["steady", "shrinker", "grower"]),
        ("name", ["shrinker", "grower", "steady"]),  # "=HYPERLINK" sorts before letters
    ],
)
def test_it_sorts_by_each_column(client: Any, staff_user: Any, world: Any, sort: str, expected: list[str]) -> None:
    client.force_login(staff_user)
    assert _slugs(client.get(reverse("tenants:list"), {"sort": sort}).content.decode()) == expected


def test_a_column_head_toggles_the_direction_and_keeps_the_filters(client: Any, staff_user: Any, world: Any) -> None:
    client.force_login(staff_user)
    body = client.get(reverse("tenants:list"), {"q": "er", "alerts": "open", "sort": "-growth", "page": "1"}).content
    heads = dict(re.findall(r'href="\?([^"]*)"[^>]*data-sort="([a-z]+)"', body.decode()))
    heads = {v: k.replace("&amp;", "&") for k, v in heads.items()}
    assert heads["growth"] == "q=er&alerts=open&sort=growth", "the current column reverses"
    assert heads["usage"] == "q=er&alerts=open&sort=usage"
    assert "page=" not in heads["usage"], "a new sort starts at page one"


def test_pagination_links_keep_the_filters_and_the_sort(client: Any, staff_user: Any) -> None:
    client.force_login(staff_user)
    store = make_datastore(host=make_host(name="pbs-y"), name="store1")
    Tenant.objects.bulk_create(
        Tenant(slug=f"t{i:03d}", name=f"T {i}", status="active", host=store.host, datastore=store,
               namespace=f"clients/t{i:03d}", pbs_userid=f"t{i:03d}@pbs")
        for i in range(120)
    )  # fmt: skip
    body = client.get(reverse("tenants:list"), {"status": "active", "sort": "-slug", "page": "2"}).content.decode()
    assert "status=active&amp;sort=-slug&amp;page=3" in body
    assert "status=active&amp;sort=-slug&amp;page=1" in body
    assert _slugs(body)[0] == "t069"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"quota": "over"}, {"grower"}),
        ({"quota": "grace"}, {"grower"}),
        ({"quota": "ok"}, {"steady"}),
        ({"alerts": "open"}, {"grower"}),
        ({"alerts": "critical"}, {"grower"}),
        ({"alerts": "none"}, {"steady", "shrinker"}),
        ({"offsite": "stale"}, {"steady"}),
        ({"drift": "found"}, {"shrinker"}),
        ({"q": "steady", "status": "active"}, {"steady"}),  # the old parameters still work
        ({"quota": "bogus", "alerts": "x", "sort": "nope", "host": "abc", "page": "zz"},
         {"grower", "steady", "shrinker"}),  # unknown values are ignored, never a 500
    ],
)
def test_filters(client: Any, staff_user: Any, world: Any, params: dict[str, str], expected: set[str]) -> None:
    stale_offsite(world["steady"])
    stale_offsite(world["grower"], stale=False)
    Tenant.objects.filter(pk=world["shrinker"].pk).update(
        drift_checked_at=timezone.now(), drift_findings=[{"kind": "acl_missing", "object": "x", "detail": "y"}]
    )
    Tenant.objects.filter(pk=world["steady"].pk).update(drift_checked_at=timezone.now(), drift_findings=[])
    client.force_login(staff_user)
    response = client.get(reverse("tenants:list"), params)
    assert response.status_code == 200
    assert set(_slugs(response.content.decode())) == expected


def test_the_csv_holds_the_filtered_sorted_list_with_raw_bytes_and_gib(
    client: Any, accounting_user: Any, world: Any
) -> None:
    client.force_login(accounting_user)
    response = client.get(reverse("tenants:export"), {"alerts": "none", "sort": "-usage"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="tenants-')
    text = b"".join(response.streaming_content).decode()
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["slug"] for r in rows] == ["shrinker", "steady"]
    shrinker, steady = rows
    assert steady["usage_bytes"] == str(5 * GIB)
    assert steady["usage_gib"] == "5.00"
    assert steady["metric"] == "latest"
    assert shrinker["metric"] == "logical"
    assert shrinker["growth_30d_bytes"] == str(-10 * GIB)
    assert shrinker["growth_30d_gib"] == "-10.00"
    assert shrinker["name"] == "'=HYPERLINK(1)", "a formula in a name is neutralised"
    assert steady["quota_percent"] == "40"
    assert shrinker["quota_percent"] == ""
    assert float(steady["backup_age_hours"]) == pytest.approx(2, abs=0.1)
    assert steady["open_alerts"] == "0"


def test_the_list_links_to_its_csv_with_the_same_filters(client: Any, staff_user: Any, world: Any) -> None:
    client.force_login(staff_user)
    body = client.get(reverse("tenants:list"), {"quota": "over", "sort": "-growth"}, **HTMX).content.decode()
    assert 'href="/tenants/export.csv?quota=over&amp;sort=-growth"' in body


def _queries(client: Any, url: str, **params: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_queries_do_not_grow_with_tenants_for_any_sort_or_the_csv(client: Any, staff_user: Any, world: Any) -> None:
    client.force_login(staff_user)
    cases = [{}, {"sort": "-growth"}, {"sort": "backup", "quota": "over"}, {"alerts": "open", "page": "2"}]
    few = [_queries(client, reverse("tenants:list"), **p) for p in cases]
    few_csv = _queries(client, reverse("tenants:export"))
    store = world["grower"].datastore
    plan = world["grower"].plan
    created = Tenant.objects.bulk_create(
        Tenant(slug=f"many{i:03d}", name=f"Many {i}", status="active", host=store.host, datastore=store, plan=plan,
               namespace=f"clients/many{i:03d}", pbs_userid=f"many{i:03d}@pbs")
        for i in range(200)
    )  # fmt: skip
    today = timezone.localdate()
    for tenant in created[:50]:
        sample(tenant, today, logical=GIB)
        alert(tenant)
    assert [_queries(client, reverse("tenants:list"), **p) for p in cases] == few
    assert _queries(client, reverse("tenants:export")) == few_csv


@pytest.mark.parametrize(("user_fixture", "status"), [("staff_user", 200), ("operator_user", 200),
                                                       ("accounting_user", 200), ("client_a", 403)])  # fmt: skip
def test_the_csv_is_for_staff_and_accounting(client: Any, request: Any, user_fixture: str, status: int) -> None:
    client.force_login(request.getfixturevalue(user_fixture))
    assert client.get(reverse("tenants:export")).status_code == status


def test_a_sort_link_carries_the_sort_into_the_filter_form(client: Any, staff_user: Any, world: Any) -> None:
    # A column head swaps only the results; the form's hidden sort must follow, or the next
    # filter change would drop the sort.
    client.force_login(staff_user)
    response = client.get(reverse("tenants:list"), {"sort": "-growth"}, **HTMX)
    html = response.content.decode()
    state = re.search(r'<span id="list-state" hx-swap-oob="true">(.*?)</span>', html, re.S)
    assert state, html[:400]
    assert '<input type="hidden" name="sort" value="-growth">' in state.group(1)
    full = client.get(reverse("tenants:list"), {"sort": "-growth"}).content.decode()
    assert full.count('id="list-state"') == 1
    assert "hx-swap-oob" not in full
