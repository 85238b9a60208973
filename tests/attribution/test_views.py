"""The usage panels: the four figures side by side with the dedup ratio, the GC time, the
estimate label, a datastore's split among tenants and others, and who may see what."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from attribution.models import AttributionRun, SnapshotIndex, TenantAttribution
from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)

pytestmark = pytest.mark.django_db

DAY = dt.date(2025, 3, 10)
GC_TIME = dt.datetime(2025, 3, 9, 22, 30, tzinfo=dt.UTC)
MIB = 2**20
GIB = 2**30


def _attributed(tenant_a, tenant_b, *, method: str = AttributionRun.Method.EXACT, error: str = ""):
    ds = tenant_a.datastore
    run = AttributionRun.objects.create(
        host=ds.host, datastore=ds.name, day=DAY, status=AttributionRun.Status.DONE, finished_at=timezone.now(),
        distinct_chunks=1000, distinct_bytes=10 * GIB, gc_disk_bytes=4 * GIB, gc_time=GC_TIME,
        others_share_bytes=1 * GIB, method=method, error=error,
    )  # fmt: skip
    a = TenantAttribution.objects.create(
        run=run, tenant=tenant_a, day=DAY, host=ds.host, datastore=ds.name, referenced_bytes=6 * GIB,
        exclusive_bytes=2 * GIB, share_bytes=5 * GIB, physical_share_bytes=2 * GIB, gc_time=GC_TIME,
    )  # fmt: skip
    TenantAttribution.objects.create(
        run=run, tenant=tenant_b, day=DAY, host=ds.host, datastore=ds.name, referenced_bytes=777 * MIB,
        exclusive_bytes=333 * MIB, share_bytes=4 * GIB, physical_share_bytes=1638 * MIB, gc_time=GC_TIME,
    )  # fmt: skip
    # Tenant A's snapshots (its namespace and a child): 15 GiB logical over 6 GiB referenced.
    for i, (ns, logical) in enumerate(((tenant_a.namespace, 9 * GIB), (f"{tenant_a.namespace}/lab", 6 * GIB))):
        SnapshotIndex.objects.create(
            host=ds.host, datastore=ds.name, namespace=ns, backup_type="vm", backup_id=str(i), backup_time=i,
            digests=b"", sizes=b"", logical_bytes=logical,
        )  # fmt: skip
    # A neighbour whose name starts like A's is not A's.
    SnapshotIndex.objects.create(
        host=ds.host, datastore=ds.name, namespace=f"{tenant_a.namespace}x", backup_type="vm", backup_id="9",
        backup_time=9, digests=b"", sizes=b"", logical_bytes=100 * GIB,
    )  # fmt: skip
    return a


def _figures(html: str) -> dict[str, str]:
    return {
        k: re.sub(r"\s+", " ", v.replace("\xa0", " ")).strip()
        for k, v in re.findall(r'data-figure="([a-z-]+)">(.*?)</td>', html, re.S)
    }


def test_the_staff_panel_shows_the_four_figures_the_ratio_and_the_gc_time(client, staff_user, tenant_a, tenant_b):
    _attributed(tenant_a, tenant_b)
    client.force_login(staff_user)

    response = client.get(reverse("attribution:tenant", args=[tenant_a.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert _figures(html) == {
        "logical": "15.00 GiB",
        "referenced": "6.00 GiB",
        "exclusive": "2.00 GiB",
        "share": "5.00 GiB",
        "dedup": "2.50&times;",
    }
    assert "2.00\xa0GiB on disk, from the garbage collection of 2025-03-09" in html
    assert "Chunk sizes are uncompressed" in html
    assert "estimate" not in html


@pytest.mark.parametrize("role", ["operator_user", "accounting_user"])
def test_operators_and_accounting_see_the_panel_too(client, request, role, tenant_a, tenant_b) -> None:
    _attributed(tenant_a, tenant_b)
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("attribution:tenant", args=[tenant_a.pk])).status_code == 200


def test_a_host_that_cannot_be_read_is_labelled_an_estimate(client, staff_user, tenant_a, tenant_b) -> None:
    _attributed(tenant_a, tenant_b)
    ds = tenant_a.datastore
    AttributionRun.objects.create(
        host=ds.host, datastore=ds.name, day=DAY + dt.timedelta(days=1), status=AttributionRun.Status.DONE,
        finished_at=timezone.now(), method=AttributionRun.Method.ESTIMATE,
        error="metering@pbs lacks Datastore.Read on /datastore/store1",
    )  # fmt: skip
    client.force_login(staff_user)

    html = client.get(reverse("attribution:tenant", args=[tenant_a.pk])).content.decode()

    assert '<span class="badge warn">estimate</span>' in html
    assert "lacks Datastore.Read" in html
    assert "older than the latest run" in html


def test_a_client_sees_its_own_figures_and_no_other_tenants(client, client_a, tenant_a, tenant_b) -> None:
    _attributed(tenant_a, tenant_b)
    client.force_login(client_a)

    mine = client.get(reverse("attribution:mine"))

    assert mine.status_code == 200
    assert _figures(mine.content.decode())["referenced"] == "6.00 GiB"
    assert "777" not in mine.content.decode()
    # Another tenant's figures are unreachable: the staff panel and the split refuse a client.
    assert client.get(reverse("attribution:tenant", args=[tenant_b.pk])).status_code == 403
    assert client.get(reverse("attribution:tenant", args=[tenant_a.pk])).status_code == 403
    assert client.get(reverse("attribution:datastore", args=[tenant_a.datastore.pk])).status_code == 403


def test_the_client_panel_of_the_other_tenant_shows_that_tenants_figures(client, client_b, tenant_a, tenant_b):
    _attributed(tenant_a, tenant_b)
    client.force_login(client_b)
    figures = _figures(client.get(reverse("attribution:mine")).content.decode())
    assert (figures["referenced"], figures["share"]) == ("777.00 MiB", "4.00 GiB")


def test_staff_only_urls_send_the_anonymous_to_sign_in(client, tenant_a) -> None:
    response = client.get(reverse("attribution:tenant", args=[tenant_a.pk]))
    assert response.status_code == 302
    assert client.get(reverse("attribution:tenant", args=[987654])).status_code == 302


def test_an_unknown_tenant_or_datastore_is_a_404(client, staff_user) -> None:
    client.force_login(staff_user)
    assert client.get(reverse("attribution:tenant", args=[987654])).status_code == 404
    assert client.get(reverse("attribution:datastore", args=[987654])).status_code == 404


def test_a_tenant_never_attributed_says_so(client, staff_user, tenant_a) -> None:
    client.force_login(staff_user)
    html = client.get(reverse("attribution:tenant", args=[tenant_a.pk])).content.decode()
    assert "No chunk-exact figures yet" in html


def test_the_datastore_split_lists_tenants_and_others_adding_up(client, staff_user, tenant_a, tenant_b) -> None:
    _attributed(tenant_a, tenant_b)
    client.force_login(staff_user)

    html = client.get(reverse("attribution:datastore", args=[tenant_a.datastore.pk])).content.decode()

    rows = re.findall(r"<tr><td>(.*?)</td>\s*<td class=\"num\">(.*?)</td>\s*<td class=\"num\">(.*?)</td>\s*"
                      r"<td class=\"num\">(.*?)</td></tr>", html, re.S)  # fmt: skip
    labels = [re.sub(r"<[^>]+>", "", r[0]).strip() for r in rows]
    assert labels == ["Tenant A", "Tenant B", "others (namespaces no tenant owns)"]
    assert [r[3] for r in rows] == ["50.0%", "40.0%", "10.0%"]
    # The others' physical share is scaled like the tenants': 1 GiB x 4/10.
    assert rows[2][2].replace("\xa0", " ") == "409.60 MiB"
    assert "1000 distinct chunks" in html
    assert "Chunk sizes are uncompressed" in html


def test_the_pages_load_the_panels(client, staff_user, client_a, tenant_a) -> None:
    client.force_login(staff_user)
    detail = client.get(reverse("tenants:detail", args=[tenant_a.slug])).content.decode()
    assert f'hx-get="{reverse("attribution:tenant", args=[tenant_a.pk])}"' in detail
    host = client.get(reverse("tenants:host", args=[tenant_a.host.name])).content.decode()
    assert f'hx-get="{reverse("attribution:datastore", args=[tenant_a.datastore.pk])}"' in host
    client.force_login(client_a)
    home = client.get(reverse("selfservice:home")).content.decode()
    assert f'hx-get="{reverse("attribution:mine")}"' in home


def test_the_accounting_usage_page_loads_the_panel(client, accounting_user, tenant_a) -> None:
    client.force_login(accounting_user)
    page = client.get(reverse("billing:tenant", args=[tenant_a.pk])).content.decode()
    assert f'hx-get="{reverse("attribution:tenant", args=[tenant_a.pk])}"' in page
