"""From PBS to the bill, over HTTPS against the simulator: the day's attribution, then metering
copies each tenant's chunk figures into its sample, the chunk metric bills the physical share,
and the staff panel shows the same figures with the dedup ratio computed by hand."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse

from attribution.models import TenantAttribution
from attribution.services.runs import attribution_collect
from billing.models import UsageSample, metric_value_expression
from plans.models import Plan
from tests.attribution.conftest import STORE, Seeded, seeded  # noqa: F401  (the fixture, by name)
from tests.attribution.test_collect import OTHERS, expected
from tests.fixtures import staff_user  # noqa: F401  (the fixture, by name)

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 3, 1)


def test_metering_bills_the_share_the_attribution_measured(seeded: Seeded, client, staff_user) -> None:  # noqa: F811
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY)
    run.refresh_from_db()
    want, _, distinct_bytes = expected(seeded)

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    samples = {s.tenant_id: s for s in UsageSample.objects.filter(day=DAY)}
    assert set(samples) == {t.pk for t in seeded.tenants.values()}
    for tenant in seeded.tenants.values():
        sample = samples[tenant.pk]
        referenced, exclusive, share = want[tenant.pk]
        physical = (share * run.gc_disk_bytes * 2 + distinct_bytes) // (2 * distinct_bytes)
        assert (sample.referenced_bytes, sample.exclusive_bytes, sample.share_bytes) == (referenced, exclusive, share)
        assert (sample.physical_share_bytes, sample.chunk_gc_at, sample.chunk_day) == (physical, run.gc_time, DAY)
    # Shares of the tenants plus the others' add up to the datastore's distinct bytes.
    assert sum(s.share_bytes for s in samples.values()) + want.get(OTHERS, (0, 0, 0))[2] == distinct_bytes
    billed = dict(
        UsageSample.objects.filter(day=DAY)
        .annotate(v=metric_value_expression(Plan.Metric.CHUNK))
        .values_list("tenant_id", "v")
    )
    assert billed == {pk: s.physical_share_bytes for pk, s in samples.items()}

    # The staff panel: the same figures, and logical over referenced from the seeded chunks.
    acme = seeded.tenants["acme"]
    logical = sum(size for snap in seeded.snaps
                  if snap.ns == acme.namespace or snap.ns.startswith(f"{acme.namespace}/") for _, size in snap.chunks())
    ratio = (Decimal(logical) / want[acme.pk][0]).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    client.force_login(staff_user)
    html = client.get(reverse("attribution:tenant", args=[acme.pk])).content.decode()
    assert re.search(r'data-figure="dedup">\s*' + re.escape(str(ratio)) + "&times;", html)
    assert TenantAttribution.objects.get(tenant=acme, day=DAY).referenced_bytes == want[acme.pk][0]
    assert "Chunk sizes are uncompressed" in html
