"""Offsite staleness (the offsite app's per-membership flag) becomes an alert, and resolves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts import services
from alerts.models import Alert
from offsite.models import OffsitePolicy, Remote, TenantOffsite
from tests.factories import make_datastore

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def membership(tenant_a, tenant_b, alert_settings):
    target = make_datastore(name="copy")
    remote = Remote.objects.create(
        pulling_host=target.host, name="main", source_host=tenant_a.host, host="pbs-main.example",
        auth_id="sync@pbs!pull",
    )
    policy = OffsitePolicy.objects.create(
        source_datastore=tenant_a.datastore, source_store=tenant_a.datastore.name, target_datastore=target,
        remote=remote,
    )
    TenantOffsite.objects.create(tenant=tenant_b, policy=policy, stale=False)
    return TenantOffsite.objects.create(
        tenant=tenant_a, policy=policy, stale=True, stale_reason="offsite copy ends 2026-03-07 02:00 UTC"
    )


@pytest.mark.django_db
def test_a_stale_offsite_copy_raises_one_alert_and_recovers(membership, tenant_a, tenant_b):
    assert services.offsite_staleness_alerts_sync(now=NOW) == 1
    services.offsite_staleness_alerts_sync(now=NOW)
    alert = Alert.objects.get(kind=Alert.Kind.OFFSITE_STALE, status="open")
    assert alert.tenant == tenant_a
    assert alert.key == services.offsite_key(membership.policy_id)
    assert "2026-03-07" in alert.message
    assert alert.notify_count == 1
    assert not Alert.objects.filter(tenant=tenant_b).exists()

    TenantOffsite.objects.filter(pk=membership.pk).update(stale=False, stale_reason="")
    assert services.offsite_staleness_alerts_sync(now=NOW) == 0
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.recovery_notified_at == NOW
