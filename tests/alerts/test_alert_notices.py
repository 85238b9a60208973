"""Alert de-duplication: one notice per condition per day, recovery announced once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from accounts.models import Role
from alerts import selectors, services
from alerts.models import Alert
from tests.factories import make_user

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
KIND = Alert.Kind.BACKUP_STALE


def raise_stale(tenant, now, key=""):
    return services.alert_raise(
        tenant=tenant, kind=KIND, key=key, title="No new backup for 30 hours", message="m", now=now
    )


@pytest.fixture
def tenant(tenant_a, alert_settings, django_capture_on_commit_callbacks):
    tenant_a.contact_email = "it@tenant-a.example"
    tenant_a.save()
    return tenant_a


def notices(event_word=""):
    return [m for m in mail.outbox if event_word in m.subject]


@pytest.mark.django_db
def test_a_new_alert_mails_the_tenant_contacts_and_msp_staff(tenant, client_a, django_capture_on_commit_callbacks):
    make_user(role=Role.CLIENT, tenant=tenant, username="gone", email="gone@tenant-a.example", is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        raise_stale(tenant, NOW)

    assert len(mail.outbox) == 2
    client_mail, staff_mail = mail.outbox
    assert client_mail.to == ["it@tenant-a.example", client_a.email]
    assert staff_mail.to == ["noc@msp.example"]
    assert "No new backup" in client_mail.subject
    assert "Tenant A" in client_mail.subject
    assert "https://portal.msp.example/alerts/" in staff_mail.body
    assert "/alerts/" not in client_mail.body, "clients get their own page, not the staff dashboard"


@pytest.mark.django_db
def test_the_same_condition_is_announced_at_most_once_a_day(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = raise_stale(tenant, NOW)
        for hour in range(1, 24):
            raise_stale(tenant, NOW + timedelta(hours=hour))
    assert len(mail.outbox) == 2, "one mail to the tenant, one to staff, despite 24 raises"
    first.refresh_from_db()
    assert first.notify_count == 1
    assert first.last_seen_at == NOW + timedelta(hours=23)
    assert Alert.objects.filter(tenant=tenant, kind=KIND).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        raise_stale(tenant, NOW + timedelta(days=1))
    assert len(mail.outbox) == 4, "a day later the reminder goes out"
    first.refresh_from_db()
    assert first.notify_count == 2


@pytest.mark.django_db
def test_recovery_is_announced_once(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        raise_stale(tenant, NOW)
        resolved = services.alert_resolve(tenant=tenant, kind=KIND, now=NOW + timedelta(hours=2))
        again = services.alert_resolve(tenant=tenant, kind=KIND, now=NOW + timedelta(hours=3))
    assert resolved is not None
    assert again is None
    recoveries = [m for m in mail.outbox if m.subject.startswith("[PBS Portal] Tenant A: Resolved:")]
    assert len(recoveries) == 2, "one recovery mail to the tenant and one to staff"
    resolved.refresh_from_db()
    assert resolved.status == Alert.Status.RESOLVED
    assert resolved.recovery_notified_at == NOW + timedelta(hours=2)


@pytest.mark.django_db
def test_a_flapping_condition_does_not_announce_more_than_once_a_day(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        raise_stale(tenant, NOW)
        services.alert_resolve(tenant=tenant, kind=KIND, now=NOW + timedelta(hours=1))
        second = raise_stale(tenant, NOW + timedelta(hours=2))
        services.alert_resolve(tenant=tenant, kind=KIND, now=NOW + timedelta(hours=3))
    subjects = [m.subject for m in mail.outbox]
    assert len([s for s in subjects if "Resolved" not in s]) == 2, "only the first raise was mailed"
    assert len([s for s in subjects if "Resolved" in s]) == 2, "only the announced alert's recovery"
    second.refresh_from_db()
    assert second.notify_count == 0
    assert second.recovery_notified_at is None
    assert Alert.objects.filter(tenant=tenant, kind=KIND).count() == 2, "both episodes are on record"


@pytest.mark.django_db
def test_conditions_with_different_keys_are_announced_separately(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for key in ("vm/100", "vm/101"):
            services.alert_raise(tenant=tenant, kind=Alert.Kind.VERIFY_FAILED, key=key, title=f"bad {key}", now=NOW)
    assert len(mail.outbox) == 4
    assert selectors.open_alerts_for_tenant(tenant.pk).count() == 2


@pytest.mark.django_db
def test_notices_are_sent_only_after_commit(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        raise_stale(tenant, NOW)
    assert mail.outbox == []
    assert callbacks, "mail is queued for after the commit"


@pytest.mark.django_db
def test_other_tenants_alerts_are_not_in_a_tenants_list(tenant, tenant_b, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        raise_stale(tenant_b, NOW)
    assert list(selectors.open_alerts_for_tenant(tenant.pk)) == []
    assert selectors.open_alerts_for_tenant(tenant_b.pk).count() == 1
