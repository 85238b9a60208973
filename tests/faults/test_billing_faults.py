"""Billing with one of two PBS hosts down: its tenants get gaps (never invented samples), the
other host's tenants are sampled, and the month closes with invoices that count the gaps.

The real stack: onboarding, metering and the monthly close all run on the session's Celery
worker; both PBS hosts are simulators over HTTPS with pinned certificates.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
from django.db import close_old_connections

from billing.models import BillingPeriod, Invoice, MeteringGap, MeteringHostResult, MeteringRun, UsageSample
from billing.tasks import billing_close_period, metering_collect_all
from tenants import services
from tenants.models import PbsHost, Tenant
from tests.billing.factories import make_plan
from tests.faults.conftest import assert_all_succeeded, wait_for_runs
from tests.faults.consistency import assert_consistent
from tests.services import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.celery, pytest.mark.redis, pytest.mark.postgres]

GIB = 2**30
PERIOD = "2025-01"
ACTIVATED = dt.datetime(2025, 1, 1, 8, 0, tzinfo=dt.UTC)
BOTH_UP, ONE_DOWN = dt.date(2025, 1, 10), dt.date(2025, 1, 20)


def _collect(day: dt.date) -> MeteringRun:
    """Start the day's metering on the worker and wait for the run to finish."""
    metering_collect_all.delay(day.isoformat())

    def finished() -> bool:
        close_old_connections()
        return MeteringRun.objects.filter(day=day).exclude(status=MeteringRun.Status.RUNNING).exists()

    assert wait_until(finished, timeout=90, interval=0.25), f"metering of {day} did not finish"
    return MeteringRun.objects.get(day=day)


def test_billing_with_one_of_two_hosts_down_records_gaps_and_bills_the_sampled(
    pbs_sim: Any, pbs_https: Any, pbs_sim_factory: Any, pbs_https_factory: Any, pbs_host: Any, faults_on: Any
) -> None:
    sim_down = pbs_sim_factory()
    server_down = pbs_https_factory(sim_down)
    up = services.pbshost_check(host_id=pbs_host(pbs_https, name="pbs-up").pk)
    down = services.pbshost_check(host_id=pbs_host(server_down, name="pbs-down").pk)
    plan = make_plan(name="per-gib", price_per_gib="0.10", base_fee="5.00")
    tenants: dict[str, list[Tenant]] = {"up": [], "down": []}
    for key, host in (("up", up), ("down", down)):
        store = host.datastores.get(name="store1")
        for i in range(4):
            tenants[key].append(services.tenant_create(slug=f"{key}{i}", name=f"{key} {i}", datastore=store, plan=plan))
    everyone = tenants["up"] + tenants["down"]
    runs = wait_for_runs([r.pk for r in services.tenant_onboard_bulk(tenant_ids=[t.pk for t in everyone])], timeout=60)
    assert_all_succeeded(runs)
    # Onboarded at the start of the billed month (the month must be over to be closed).
    Tenant.objects.filter(pk__in=[t.pk for t in everyone]).update(activated_at=ACTIVATED)
    sizes = {}
    for i, tenant in enumerate(everyone):
        sim = pbs_sim if tenant in tenants["up"] else sim_down
        sizes[tenant.pk] = (i + 1) * 10 * GIB
        sim.seed_snapshot(
            store="store1", ns=tenant.namespace, backup_type="vm", backup_id="100",
            backup_time=int(ACTIVATED.timestamp()) + 3600, size=sizes[tenant.pk], owner=f"{tenant.slug}@pbs!backup",
        )  # fmt: skip

    first = _collect(BOTH_UP)
    assert first.status == MeteringRun.Status.OK

    server_down.pause()  # connection refused for the whole collection
    started = time.monotonic()
    run = _collect(ONE_DOWN)
    server_down.resume()

    assert time.monotonic() - started < 60, "a down host fails fast instead of timing out per tenant"
    assert run.status == MeteringRun.Status.PARTIAL
    sampled = dict(UsageSample.objects.filter(day=ONE_DOWN).values_list("tenant_id", "logical_bytes"))
    assert sampled == {t.pk: sizes[t.pk] for t in tenants["up"]}
    gaps = MeteringGap.objects.filter(day=ONE_DOWN)
    assert sorted(gaps.values_list("tenant_id", flat=True)) == sorted(t.pk for t in tenants["down"])
    assert set(gaps.values_list("host_name", flat=True)) == {"pbs-down"}
    assert all(gap.reason for gap in gaps)
    assert MeteringHostResult.objects.get(run=run, host=down).status == MeteringHostResult.Status.FAILED
    assert MeteringHostResult.objects.get(run=run, host=up).status == MeteringHostResult.Status.OK

    billing_close_period.delay(PERIOD)
    assert wait_until(
        lambda: close_old_connections() or BillingPeriod.objects.filter(status=BillingPeriod.Status.CLOSED).exists(),
        timeout=60,
        interval=0.25,
    ), "the month was not closed"

    invoices = {inv.tenant_id: inv for inv in Invoice.objects.filter(period__start=dt.date(2025, 1, 1))}
    assert set(invoices) == {t.pk for t in everyone}
    for tenant in everyone:
        invoice = invoices[tenant.pk]
        assert invoice.active_days == 31
        # Both collections for the up host; only the first for the down host. Each missing
        # day is a gap; days 10..31 carry the last known value, days 1..9 count as 0.
        expected_samples = 2 if tenant in tenants["up"] else 1
        assert (invoice.samples, invoice.gaps) == (expected_samples, 31 - expected_samples), tenant.slug
        expected_avg = Decimal(sizes[tenant.pk] * 22) / 31 / GIB
        assert abs(invoice.avg_gib - expected_avg) < Decimal("0.000001"), (tenant.slug, invoice.avg_gib)
        assert invoice.total == Decimal("5.00") + (invoice.billed_gib * Decimal("0.10")).quantize(Decimal("0.01"))

    assert_consistent((up, pbs_sim), (down, sim_down))
    assert PbsHost.objects.count() == 2
