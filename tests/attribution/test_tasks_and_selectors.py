"""The daily task fans out per datastore; the selectors read what the runs stored."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from celery.schedules import crontab

from attribution import selectors
from attribution.models import AttributionRun, TenantAttribution
from attribution.services.runs import attribution_collect
from attribution.tasks import attribution_collect_all, attribution_collect_datastore
from portal.settings import CELERY_BEAT_SCHEDULE, METERING_HOUR

from .conftest import STORE, Seeded

pytestmark = pytest.mark.django_db


def test_beat_runs_attribution_daily_an_hour_before_metering() -> None:
    entry = CELERY_BEAT_SCHEDULE["attribution-daily"]
    assert entry["task"] == "attribution.tasks.attribution_collect_all"
    assert entry["schedule"] == crontab(minute=0, hour=(METERING_HOUR - 1) % 24)


def test_the_daily_task_runs_every_datastore_once_and_is_idempotent(
    seeded: Seeded, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert attribution_collect_all.delay("2026-04-01").get() == 2  # store1 and store2
    runs = AttributionRun.objects.filter(day=dt.date(2026, 4, 1)).order_by("datastore")
    assert [(r.datastore, r.status) for r in runs] == [("store1", "done"), ("store2", "done")]
    sessions = seeded.sim.content.sessions_opened
    with django_capture_on_commit_callbacks(execute=True):
        attribution_collect_all.delay("2026-04-01").get()
    assert AttributionRun.objects.filter(day=dt.date(2026, 4, 1)).count() == 2  # the day's runs, returned as done
    assert seeded.sim.content.sessions_opened == sessions


def test_a_task_for_a_removed_host_does_nothing(db: None) -> None:
    attribution_collect_datastore.delay(987654, "store1").get()
    assert not AttributionRun.objects.exists()


def test_selectors_read_the_latest_split_and_history(seeded: Seeded) -> None:
    host = seeded.host
    acme, beta = seeded.tenants["acme"], seeded.tenants["beta"]
    day1, day2 = dt.date(2026, 4, 1), dt.date(2026, 4, 2)
    assert selectors.datastore_split(host_id=host.pk, datastore=STORE).run is None
    attribution_collect(host_id=host.pk, datastore=STORE, day=day1)
    run2 = attribution_collect(host_id=host.pk, datastore=STORE, day=day2)

    split = selectors.datastore_split(host_id=host.pk, datastore=STORE)
    assert split.run == run2
    assert [row.share_bytes for row in split.rows] == sorted((row.share_bytes for row in split.rows), reverse=True)
    assert {row.tenant_id for row in split.rows} == {acme.pk, beta.pk}
    assert sum(row.share_bytes for row in split.rows) + split.others_share_bytes == run2.distinct_bytes

    latest = selectors.tenant_attribution_latest(tenant_id=acme.pk)
    assert latest is not None
    assert (latest.day, latest.run_id) == (day2, run2.pk)
    history = selectors.tenant_attribution_history(tenant_id=acme.pk, days=100000)
    assert [row.day for row in history] == [day1, day2]
    by_tenant = selectors.attribution_by_tenant_for_day(day=day1, tenant_ids=[acme.pk, beta.pk, 424242])
    assert set(by_tenant) == {acme.pk, beta.pk}
    assert by_tenant[acme.pk] == TenantAttribution.objects.get(tenant=acme, day=day1)
