"""End to end with a real Celery worker (PostgreSQL, Redis) and two PBS simulators over
HTTPS: the worker runs a sync job (pbs2 pulls from pbs1 with the pinned fingerprint) and the
beat task's refresh records the run and the tenant's offsite staleness."""

from __future__ import annotations

import time

import pytest

from offsite import services, tasks
from offsite.models import SyncJobRecord, TenantOffsite
from tests.offsite.conftest import DAY
from tests.services import wait_until


@pytest.mark.celery
def test_the_worker_runs_the_job_and_refreshes_status(https_hosts):
    hosts = https_hosts
    acme = hosts.tenant("acme")
    now = int(time.time())
    hosts.seed(acme, "vm", "100", [now - 4 * DAY, now - 3 * DAY])
    policy = services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store, stale_after_hours=24
    )
    record = SyncJobRecord.objects.get(policy=policy)

    tasks.offsite_status_refresh_all.delay()
    assert wait_until(
        lambda: TenantOffsite.objects.filter(tenant=acme, stale=True).exists(), timeout=60
    ), "the refresh found the copy missing"

    tasks.offsite_job_run.delay(record.pk)
    assert wait_until(
        lambda: SyncJobRecord.objects.filter(pk=record.pk, last_run_state="OK").exists(), timeout=60
    ), "the worker ran the job and read its state"

    tasks.offsite_status_refresh_all.delay()
    assert wait_until(
        lambda: TenantOffsite.objects.filter(tenant=acme, stale=False, target_snapshot_count=2).exists(),
        timeout=60,
    ), "the refresh saw the copy caught up"
    record.refresh_from_db()
    assert record.last_run_upid.startswith("UPID:")
