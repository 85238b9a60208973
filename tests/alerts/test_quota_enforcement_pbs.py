"""Quota enforcement against the PBS simulator: effective privileges in each state.

A tenant is onboarded on a simulated PBS exactly as in production (tenants app), then
fed a month of metering samples. In every state the effective privileges are read back
from PBS (/access/permissions) and exercised with the tenant's own tokens: when enforced
the backup token can no longer back up, while the restore token still reads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from alerts import services
from alerts.models import QuotaState
from pbsclient import PbsClient
from pbsclient.errors import AuthenticationFailed, PermissionDenied
from tenants.models import Tenant, TenantToken
from tests.alerts.conftest import add_sample, make_plan_quota

DAY0 = date(2026, 3, 1)
BACKUP = "Datastore.Backup"
READ = "Datastore.Read"


def at(day: int, hour: int = 2) -> datetime:
    return datetime.combine(DAY0 + timedelta(days=day), time(hour), tzinfo=UTC)


class OnboardedTenant:
    def __init__(self, tenant: Tenant, host, sim, backup_secret: str, restore_secret: str, restore_tokenid: str):
        self.tenant = tenant
        self.host = host
        self.sim = sim
        self.backup_secret = backup_secret
        self.restore_secret = restore_secret
        self.restore_tokenid = restore_tokenid

    @property
    def backup_tokenid(self) -> str:
        return f"{self.tenant.pbs_userid}!backup"

    def client_as(self, tokenid: str, secret: str) -> PbsClient:
        return PbsClient(
            base_url=self.host.url, token_id=tokenid, token_secret=secret, transport=self.sim.transport()
        )

    def privileges(self, auth_id: str) -> set[str]:
        from tenants.pbs import client_for_host

        self.tenant.refresh_from_db()
        path = self.tenant.acl_path
        with client_for_host(self.host) as admin:
            return {p for p, _ in admin.permissions_get(auth_id=auth_id, path=path).get(path, {}).items()}

    def backup_token_can_list_groups(self) -> bool:
        """group_list needs Datastore.Audit or .Backup: the backup token's Backup shows here.
        (Stopping writes also disables the token, which PBS answers with 401.)"""
        with self.client_as(self.backup_tokenid, self.backup_secret) as client:
            try:
                client.group_list("store1", ns=self.tenant.namespace)
            except (PermissionDenied, AuthenticationFailed):
                return False
            return True

    def restore_token_snapshots(self) -> int:
        with self.client_as(self.restore_tokenid, self.restore_secret) as client:
            return len(client.snapshot_list("store1", ns=self.tenant.namespace))


@pytest.fixture
def onboarded(pbs_sim, pbs_host, alert_settings, django_capture_on_commit_callbacks) -> OnboardedTenant:
    from tenants import services as tenant_services

    host = pbs_host(pbs_sim)
    datastore = host.datastores.get(name="store1")
    quota = make_plan_quota(soft_gib="100", hard_gib="150", grace_days=7, action="stop-writes")
    tenant = tenant_services.tenant_create(
        slug="acme", name="ACME", datastore=datastore, plan=quota.plan, contact_email="it@acme.example"
    )
    with django_capture_on_commit_callbacks(execute=True):
        tenant_services.tenant_onboard(tenant_id=tenant.pk)
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE, "onboarding on the simulator must succeed first"
    backup = TenantToken.objects.get(tenant=tenant, purpose=TenantToken.Purpose.BACKUP, revoked_at__isnull=True)
    restore = tenant_services.restore_token_create(
        tenant=tenant, name="laptop", days=30, actor=None, keep_secret=True
    ).token
    pbs_sim.seed_snapshot(
        store="store1", ns=tenant.namespace, backup_type="vm", backup_id="100",
        backup_time=int(at(0).timestamp()), size=10 * 2**30, owner=f"{tenant.pbs_userid}!backup",
        verification="ok",
    )
    return OnboardedTenant(
        tenant, host, pbs_sim,
        backup_secret=tenant_services.token_reveal(token_id=backup.pk),
        restore_secret=tenant_services.token_reveal(token_id=restore.pk),
        restore_tokenid=restore.tokenid,
    )


def sample_day(t: OnboardedTenant, day: int, gib: float, capture) -> QuotaState:
    sample = add_sample(t.tenant, day=DAY0 + timedelta(days=day), gib=gib, newest_backup_at=at(day, 1))
    with capture(execute=True):
        services.tenant_usage_sampled(tenant_id=t.tenant.pk, sample_id=sample.pk, now=at(day))
    return QuotaState.objects.get(tenant=t.tenant)


def assert_writes_allowed(t: OnboardedTenant) -> None:
    user = t.privileges(t.tenant.pbs_userid)
    assert {BACKUP, READ} <= user
    assert BACKUP in t.privileges(t.backup_tokenid)
    assert READ in t.privileges(t.restore_tokenid)
    assert t.backup_token_can_list_groups()
    assert t.restore_token_snapshots() == 1


def assert_writes_stopped_reads_kept(t: OnboardedTenant) -> None:
    user = t.privileges(t.tenant.pbs_userid)
    assert BACKUP not in user
    assert READ in user
    assert BACKUP not in t.privileges(t.backup_tokenid)
    assert READ in t.privileges(t.restore_tokenid), "restores keep working when enforced"
    assert not t.backup_token_can_list_groups(), "the backup token lost Datastore.Backup"
    assert t.restore_token_snapshots() == 1, "the restore token still reads the snapshots"


@pytest.mark.django_db
def test_privileges_on_pbs_follow_the_quota_through_a_month(onboarded, django_capture_on_commit_callbacks):
    t = onboarded
    capture = django_capture_on_commit_callbacks
    usage = [50, 60, 85, 90, 105, 110, 112, 115, 118, 120, 122, 123, 124, 125, 126, 90, 60]
    states = {}
    for day, gib in enumerate(usage):
        states[day] = sample_day(t, day, gib, capture)
        if day == 2:
            assert states[day].state == "warning"
            assert_writes_allowed(t)
        if day == 5:
            assert states[day].state == "over"
            assert_writes_allowed(t)
        if day == 11:
            assert states[day].state == "enforced", "grace of 7 days from day 4"
            assert_writes_stopped_reads_kept(t)
        if day == 15:
            assert states[day].state == "warning"
            assert_writes_allowed(t)

    enforced = states[11]
    assert enforced.writes_blocked
    assert BACKUP not in enforced.pbs_privileges[t.backup_tokenid]
    assert READ in enforced.pbs_privileges[t.restore_tokenid]
    assert enforced.pbs_error == ""
    assert states[16].state == "ok"
    assert not states[16].writes_blocked
    t.tenant.refresh_from_db()
    assert not t.tenant.writes_blocked


@pytest.mark.django_db
def test_the_drift_check_does_not_undo_enforcement(onboarded, django_capture_on_commit_callbacks):
    from alerts.selectors import tenant_writes_blocked
    from tenants import services as tenant_services

    t = onboarded
    sample_day(t, 0, 200, django_capture_on_commit_callbacks)  # past the hard limit
    assert tenant_writes_blocked(t.tenant)
    findings = tenant_services.tenant_drift_check(tenant_id=t.tenant.pk)
    assert findings == [], "removed write ACLs are the wanted state, not drift"
    assert_writes_stopped_reads_kept(t)


@pytest.mark.django_db
def test_staff_raising_the_limit_restores_writes_on_pbs(onboarded, staff_user, django_capture_on_commit_callbacks):
    from decimal import Decimal

    t = onboarded
    sample_day(t, 0, 200, django_capture_on_commit_callbacks)
    assert_writes_stopped_reads_kept(t)
    with django_capture_on_commit_callbacks(execute=True):
        state = services.tenant_quota_set(
            tenant_id=t.tenant.pk, soft_limit_gib=Decimal("500"), hard_limit_gib=Decimal("800"), actor=staff_user
        )
    assert state.state == "ok"
    assert_writes_allowed(t)
    assert QuotaState.objects.get(tenant=t.tenant).writes_blocked is False


@pytest.mark.django_db
def test_enforcement_is_idempotent_on_pbs(onboarded, django_capture_on_commit_callbacks):
    t = onboarded
    sample_day(t, 0, 200, django_capture_on_commit_callbacks)
    before = len(t.sim.request_log)
    services.quota_enforcement_sync(tenant_id=t.tenant.pk)
    services.quota_enforcement_sync(tenant_id=t.tenant.pk)
    writes = [(m, p) for m, p, *_ in t.sim.request_log[before:] if m in ("PUT", "POST", "DELETE")]
    assert writes == [], "nothing left to change: only reads (check and verify)"
    assert_writes_stopped_reads_kept(t)


@pytest.mark.django_db
def test_quota_recovery_does_not_lift_a_suspension(onboarded, django_capture_on_commit_callbacks):
    from tenants import services as tenant_services

    t = onboarded
    sample_day(t, 0, 200, django_capture_on_commit_callbacks)
    tenant_services.tenant_suspend(tenant_id=t.tenant.pk, reason="unpaid")
    sample_day(t, 1, 10, django_capture_on_commit_callbacks)
    assert QuotaState.objects.get(tenant=t.tenant).state == "ok"
    assert_writes_stopped_reads_kept(t)
    tenant_services.tenant_resume(tenant_id=t.tenant.pk)
    assert_writes_allowed(t)


@pytest.mark.django_db
def test_resuming_a_suspended_tenant_keeps_the_quota_block(onboarded, django_capture_on_commit_callbacks):
    from tenants import services as tenant_services

    t = onboarded
    sample_day(t, 0, 200, django_capture_on_commit_callbacks)
    tenant_services.tenant_suspend(tenant_id=t.tenant.pk, reason="unpaid")
    tenant_services.tenant_resume(tenant_id=t.tenant.pk)
    assert_writes_stopped_reads_kept(t)


@pytest.mark.django_db
def test_a_pbs_failure_is_recorded_and_a_later_attempt_converges(onboarded, django_capture_on_commit_callbacks):
    from pbssim import FaultConfig

    t = onboarded
    sample = add_sample(t.tenant, day=DAY0, gib=200)
    services.quota_evaluate_tenant(tenant_id=t.tenant.pk, sample_id=sample.pk, now=at(0))  # no sync yet
    t.sim.faults = FaultConfig(error_rate=1.0, seed=1)
    with pytest.raises(services.QuotaEnforcementError):
        services.quota_enforcement_sync(tenant_id=t.tenant.pk)
    state = QuotaState.objects.get(tenant=t.tenant)
    assert state.pbs_error
    assert not state.writes_blocked, "not recorded as applied while PBS was failing"

    t.sim.faults = FaultConfig()
    state = services.quota_enforcement_sync(tenant_id=t.tenant.pk)  # the task's next retry
    assert state.writes_blocked
    assert state.pbs_error == ""
    assert_writes_stopped_reads_kept(t)
