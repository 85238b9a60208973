"""Metering end to end: simulated PBS hosts over real HTTPS, and a real Celery worker
fanning a run out per host while one host is down."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.core.management import call_command

from billing.models import MeteringGap, MeteringHostResult, MeteringRun, UsageSample
from tests.factories import make_tenant
from tests.services import wait_until

# The worker subprocess reads its settings from the environment when the session starts it:
# retry a failed host after 1 s instead of 10 s so the down-host test stays short.
os.environ.setdefault("PORTAL_METERING_RETRY_DELAY_SECONDS", "1")

T0 = 1_735_689_600
GIB = 2**30


def _seed(sim, slug: str, sizes: dict[str, list[int]]) -> int:
    """Seed snapshots under clients/<slug>/<sub> and return their total size."""
    total = 0
    for sub, values in sizes.items():
        ns = f"clients/{slug}" + (f"/{sub}" if sub else "")
        for i, size in enumerate(values):
            sim.seed_snapshot(
                store="store1", ns=ns, backup_type="vm", backup_id="100", backup_time=T0 + i * 60, size=size
            )
            total += size
    return total


@pytest.mark.django_db
def test_collect_over_https_measures_nested_namespaces(pbs_sim, pbs_https, pbs_host, settings) -> None:
    settings.PORTAL_METERING_RETRY_DELAY_SECONDS = 0.0
    host = pbs_host(pbs_https)
    store = host.datastores.get(name="store1")
    acme = make_tenant(slug="acme", datastore=store)
    expected = _seed(pbs_sim, "acme", {"": [GIB, 2 * GIB], "prod": [3 * GIB], "prod/db": [4 * GIB]})
    _seed(pbs_sim, "acme2", {"": [100 * GIB]})  # a neighbour sharing the prefix

    call_command("billing", "collect", "--as-of", "2025-01-15")

    sample = UsageSample.objects.get(tenant=acme, day=dt.date(2025, 1, 15))
    assert sample.logical_bytes == expected
    # Newest snapshot of each of the three groups (one per namespace).
    assert sample.latest_bytes == 2 * GIB + 3 * GIB + 4 * GIB
    assert (sample.group_count, sample.namespace_count, sample.snapshot_count) == (3, 3, 4)
    assert sample.gc_source == "live"


@pytest.mark.celery
def test_the_worker_fans_out_per_host_and_a_down_host_becomes_gaps(pbs_sim_factory, pbs_https_factory, pbs_host):
    from billing.tasks import metering_collect_all

    sim_up, sim_down = pbs_sim_factory(), pbs_sim_factory()
    server_up, server_down = pbs_https_factory(sim_up), pbs_https_factory(sim_down)
    host_up = pbs_host(server_up, name="pbs-up")
    host_down = pbs_host(server_down, name="pbs-down")
    up = [make_tenant(slug=f"up{i}", datastore=host_up.datastores.get(name="store1")) for i in range(3)]
    down = [make_tenant(slug=f"down{i}", datastore=host_down.datastores.get(name="store1")) for i in range(2)]
    for tenant in up:
        _seed(sim_up, tenant.slug, {"": [GIB], "sub": [2 * GIB]})
    server_down.stop()  # the host is unreachable for the whole run

    metering_collect_all.delay("2025-01-15")

    assert wait_until(lambda: MeteringRun.objects.exclude(status=MeteringRun.Status.RUNNING).exists(), timeout=120), (
        "the run finished"
    )
    run = MeteringRun.objects.get()
    assert run.status == MeteringRun.Status.PARTIAL
    assert {s.tenant_id: s.logical_bytes for s in UsageSample.objects.all()} == {t.pk: 3 * GIB for t in up}
    assert set(MeteringGap.objects.values_list("tenant_id", flat=True)) == {t.pk for t in down}
    failed = MeteringHostResult.objects.get(run=run, host=host_down)
    assert failed.status == MeteringHostResult.Status.FAILED
    assert failed.error
    assert MeteringHostResult.objects.get(run=run, host=host_up).status == MeteringHostResult.Status.OK
