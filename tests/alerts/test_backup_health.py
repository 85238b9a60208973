"""The hourly check: newest backup per tenant (group_list) and failed verifications
(snapshot_list), one pass per PBS host, against the simulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from alerts import services, tasks
from alerts.models import Alert, BackupHealth
from tenants.pbs import client_for_host
from tests.factories import make_tenant

HOUR = 3600


@pytest.fixture
def host_with_tenants(pbs_sim, pbs_host, alert_settings):
    host = pbs_host(pbs_sim)
    datastore = host.datastores.get(name="store1")
    long_ago = datetime.now(tz=UTC) - timedelta(days=30)
    fresh = make_tenant(slug="fresh", datastore=datastore, activated_at=long_ago)
    stale = make_tenant(slug="stale", datastore=datastore, activated_at=long_ago)
    broken = make_tenant(slug="broken", datastore=datastore, activated_at=long_ago)
    now = int(time.time())
    seed = pbs_sim.seed_snapshot
    seed(store="store1", ns="clients/fresh", backup_type="vm", backup_id="100", backup_time=now - 2 * HOUR,
         size=1, owner="fresh@pbs!backup", verification="ok")
    seed(store="store1", ns="clients/stale", backup_type="vm", backup_id="200", backup_time=now - 40 * HOUR,
         size=1, owner="stale@pbs!backup", verification="ok")
    # broken: vm/300's newest verified snapshot failed; an older one was fine; ct/301 is fine.
    seed(store="store1", ns="clients/broken", backup_type="vm", backup_id="300", backup_time=now - 30 * HOUR,
         size=1, owner="broken@pbs!backup", verification="ok")
    seed(store="store1", ns="clients/broken", backup_type="vm", backup_id="300", backup_time=now - 5 * HOUR,
         size=1, owner="broken@pbs!backup", verification="failed")
    seed(store="store1", ns="clients/broken", backup_type="vm", backup_id="300", backup_time=now - 1 * HOUR,
         size=1, owner="broken@pbs!backup", verification=None)
    seed(store="store1", ns="clients/broken", backup_type="ct", backup_id="301", backup_time=now - 3 * HOUR,
         size=1, owner="broken@pbs!backup", verification="ok")
    return host, {"fresh": fresh, "stale": stale, "broken": broken}


def open_alerts(tenant) -> list[tuple[str, str]]:
    return sorted(Alert.objects.filter(tenant=tenant, status="open").values_list("kind", "key"))


@pytest.mark.django_db
def test_the_hourly_check_raises_stale_and_failed_verification_alerts(
    host_with_tenants, django_capture_on_commit_callbacks
):
    _host, tenants = host_with_tenants
    with django_capture_on_commit_callbacks(execute=True):
        tasks.alerts_hourly_check()

    assert open_alerts(tenants["fresh"]) == []
    assert open_alerts(tenants["stale"]) == [("backup_stale", "")]
    assert open_alerts(tenants["broken"]) == [("verify_failed", "vm/300")]
    health = BackupHealth.objects.get(tenant=tenants["broken"])
    assert health.group_count == 2
    assert health.failed_verifications == ["vm/300"]


@pytest.mark.django_db
def test_a_new_backup_and_a_good_verification_resolve_the_alerts(
    pbs_sim, host_with_tenants, django_capture_on_commit_callbacks
):
    host, tenants = host_with_tenants
    with django_capture_on_commit_callbacks(execute=True):
        tasks.alerts_hourly_check()
    now = int(time.time())
    pbs_sim.seed_snapshot(store="store1", ns="clients/stale", backup_type="vm", backup_id="200",
                          backup_time=now - 60, size=1, owner="stale@pbs!backup", verification=None)
    pbs_sim.seed_snapshot(store="store1", ns="clients/broken", backup_type="vm", backup_id="300",
                          backup_time=now - 30, size=1, owner="broken@pbs!backup", verification="ok")
    with django_capture_on_commit_callbacks(execute=True):
        services.host_backup_health_check(host_id=host.pk, now=datetime.now(tz=UTC) + timedelta(hours=7))
    assert open_alerts(tenants["stale"]) == []
    assert open_alerts(tenants["broken"]) == []
    resolved = Alert.objects.get(tenant=tenants["stale"], kind="backup_stale")
    assert resolved.resolution == "recovered"


@pytest.mark.django_db
def test_one_pass_per_host_makes_a_bounded_number_of_pbs_calls(pbs_sim, host_with_tenants):
    host, tenants = host_with_tenants
    before = len(pbs_sim.request_log)
    services.host_backup_health_check(host_id=host.pk)
    calls = pbs_sim.request_log[before:]
    # Per tenant: namespace list, one group list per namespace, one snapshot list per namespace.
    assert len(calls) <= 3 * len(tenants) + 2
    services.host_backup_health_check(host_id=host.pk)
    again = pbs_sim.request_log[before + len(calls):]
    assert len(again) <= 2 * len(tenants) + 2, "verification states are re-read only every few hours"


@pytest.mark.django_db
def test_a_tenant_with_no_backup_at_all_alerts_after_the_threshold_from_activation(pbs_sim, pbs_host, alert_settings):
    host = pbs_host(pbs_sim)
    datastore = host.datastores.get(name="store1")
    new = make_tenant(slug="newbie", datastore=datastore, activated_at=datetime.now(tz=UTC) - timedelta(hours=2))
    old = make_tenant(slug="oldie", datastore=datastore, activated_at=datetime.now(tz=UTC) - timedelta(days=3))
    with client_for_host(host) as client:
        client.namespace_create("store1", "clients")
        for slug in ("newbie", "oldie"):
            client.namespace_create("store1", slug, parent="clients")
    services.host_backup_health_check(host_id=host.pk)
    assert open_alerts(new) == []
    assert open_alerts(old) == [("backup_stale", "")]
    assert Alert.objects.get(tenant=old).title == "No backup received yet"


@pytest.mark.django_db
def test_a_per_tenant_threshold_overrides_the_default(host_with_tenants):
    host, tenants = host_with_tenants
    services.tenant_alert_settings_set(tenant_id=tenants["stale"].pk, backup_max_age_hours=72)
    services.tenant_alert_settings_set(tenant_id=tenants["fresh"].pk, backup_max_age_hours=1)
    services.host_backup_health_check(host_id=host.pk)
    assert open_alerts(tenants["stale"]) == []
    assert open_alerts(tenants["fresh"]) == [("backup_stale", "")]


@pytest.mark.django_db
def test_a_tenant_whose_listing_fails_is_recorded_and_the_pass_goes_on(host_with_tenants, pbs_sim):
    host, tenants = host_with_tenants
    missing = make_tenant(slug="missing", datastore=tenants["fresh"].datastore)  # namespace not on PBS
    checked = services.host_backup_health_check(host_id=host.pk)
    assert checked == 3
    assert BackupHealth.objects.get(tenant=missing).last_error
    assert open_alerts(tenants["stale"]) == [("backup_stale", "")]
