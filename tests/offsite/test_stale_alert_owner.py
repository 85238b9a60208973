"""Offsite staleness alerts have one owner (alerts, key ``policy-N``), fed by offsite's status
refresh through a signal and by the hourly sweep: never two alerts for one stale copy, never a
false "resolved" between a refresh and a sweep."""

from __future__ import annotations

import time

from alerts import services as alert_services
from alerts.models import Alert
from offsite import services
from offsite.models import SyncJobRecord, TenantOffsite
from tests.offsite.conftest import DAY, Hosts


def test_a_stale_copy_has_one_alert_through_refreshes_and_hourly_sweeps(hosts: Hosts) -> None:
    acme = hosts.tenant("acme")
    now = int(time.time())
    hosts.seed(acme, "vm", "100", [now - 5 * DAY, now - 3 * DAY], size=700)
    policy = services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store, stale_after_hours=48
    )

    for _ in range(3):
        services.offsite_status_refresh(host=hosts.dst)
        alert_services.offsite_staleness_alerts_sync()

    alerts = list(Alert.objects.filter(tenant=acme, kind=Alert.Kind.OFFSITE_STALE))
    assert [(a.key, a.status) for a in alerts] == [(f"policy-{policy.pk}", Alert.Status.OPEN)]
    assert alerts[0].resolved_at is None

    services.sync_job_run(record=SyncJobRecord.objects.get(policy=policy))
    services.offsite_status_refresh(host=hosts.dst)
    assert not TenantOffsite.objects.get(tenant=acme, policy=policy).stale
    alerts = list(Alert.objects.filter(tenant=acme, kind=Alert.Kind.OFFSITE_STALE))
    assert [(a.key, a.status) for a in alerts] == [(f"policy-{policy.pk}", Alert.Status.RESOLVED)]


def test_the_status_refresh_alone_raises_the_alert_under_the_policy_key(hosts: Hosts) -> None:
    acme = hosts.tenant("acme")
    now = int(time.time())
    hosts.seed(acme, "vm", "100", [now - 5 * DAY], size=700)
    policy = services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store, stale_after_hours=48
    )
    services.offsite_status_refresh(host=hosts.dst)
    assert list(Alert.objects.filter(tenant=acme).values_list("kind", "key")) == [
        (Alert.Kind.OFFSITE_STALE, f"policy-{policy.pk}")
    ]
