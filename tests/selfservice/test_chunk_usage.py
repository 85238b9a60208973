"""The client page's chunk-exact usage: its own figures in the chart and the panel, never another's."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from attribution.models import AttributionRun, TenantAttribution
from tests.billing.factories import GIB, make_sample

pytestmark = pytest.mark.django_db


def _chunk_days(tenant, *, referenced: int, share: int, days: int = 3) -> None:
    today = timezone.localdate()
    for i in range(days):
        sample = make_sample(tenant=tenant, day=today - dt.timedelta(days=i), logical=5 * referenced, physical=GIB)
        sample.referenced_bytes, sample.exclusive_bytes = referenced, referenced // 2
        sample.share_bytes, sample.physical_share_bytes = share, share // 2
        sample.chunk_gc_at = timezone.now() - dt.timedelta(hours=5)
        sample.chunk_day = sample.day
        sample.save()


def test_the_client_home_charts_its_own_chunk_figures(client, client_a, tenant_a, tenant_b) -> None:
    _chunk_days(tenant_a, referenced=3 * GIB, share=2 * GIB)
    _chunk_days(tenant_b, referenced=71 * GIB, share=53 * GIB)
    client.force_login(client_a)

    page = client.get(reverse("selfservice:home")).content.decode()

    for key in ("logical", "referenced", "exclusive", "share"):
        assert f"usage-line-{key}" in page, key
    caption = re.sub(r"\s+", " ", page)
    assert "referenced 3.00 GiB, exclusive 1.50 GiB, share 2.00 GiB, physical share 1.00 GiB" in caption
    assert "Chunk sizes are uncompressed" in caption
    assert "71.00 GiB" not in page
    assert "53.00 GiB" not in page


def test_a_chart_without_chunk_figures_draws_only_the_three_metrics(client, client_a, tenant_a) -> None:
    make_sample(tenant=tenant_a, day=timezone.localdate(), logical=GIB)
    client.force_login(client_a)

    page = client.get(reverse("selfservice:home")).content.decode()

    assert "usage-line-logical" in page
    assert "usage-line-referenced" not in page
    assert "Chunk-exact" not in page


def test_the_client_panel_cannot_be_pointed_at_another_tenant(client, client_a, tenant_a, tenant_b) -> None:
    ds = tenant_b.datastore
    run = AttributionRun.objects.create(
        host=ds.host, datastore=ds.name, day=timezone.localdate(), status=AttributionRun.Status.DONE,
        finished_at=timezone.now(), distinct_bytes=100 * GIB,
    )  # fmt: skip
    TenantAttribution.objects.create(
        run=run, tenant=tenant_b, day=run.day, host=ds.host, datastore=ds.name, referenced_bytes=71 * GIB,
        exclusive_bytes=7 * GIB, share_bytes=53 * GIB,
    )  # fmt: skip
    client.force_login(client_a)

    for url in (
        reverse("attribution:mine") + f"?tenant={tenant_b.pk}",
        reverse("attribution:mine") + f"?tenant_id={tenant_b.pk}",
    ):
        html = client.get(url).content.decode()
        assert "71.00" not in html
        assert "53.00" not in html
        assert "No chunk-exact figures yet" in html
    assert client.get(reverse("attribution:tenant", args=[tenant_b.pk])).status_code == 403
