"""Replication follows the tenant lifecycle without anyone calling offsite: an onboarding
run that succeeds includes the tenant in its datastore's policies, an offboarding run
removes its tenant job (tenants.signals.tenant_run_finished -> offsite tasks)."""

from __future__ import annotations

import pytest

from offsite import services
from offsite.models import OffsitePolicy, SyncJobRecord, TenantOffsite
from tenants import services as tenant_services
from tenants.models import Tenant
from tenants.onboarding import RunResult, run_execute
from tenants.pbs import client_for_host

pytestmark = pytest.mark.django_db


def _run(tenant: Tenant, kind: str, capture, **options) -> None:
    run, _ = tenant_services.tenant_onboard(tenant_id=tenant.pk, kind=kind, options=options, enqueue=False)
    with capture(execute=True):  # the signal is sent once the run's transaction commits
        assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED


def test_onboarding_includes_the_tenant_and_offboarding_removes_its_job(
    hosts, django_capture_on_commit_callbacks
) -> None:
    policy = services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store,
        scope=OffsitePolicy.Scope.TENANTS, auto_include_tenants=True,
    )  # fmt: skip
    tenant = tenant_services.tenant_create(slug="acme", name="Acme", datastore=hosts.src_store)

    _run(tenant, "onboard", django_capture_on_commit_callbacks)

    record = SyncJobRecord.objects.get(membership__tenant=tenant)
    assert record.job_id == f"offsite-{policy.pk}-acme"
    with client_for_host(hosts.dst) as dst:
        assert dst.sync_job_get(record.job_id).ns == "clients/acme"

    _run(tenant, "repair", django_capture_on_commit_callbacks)  # a repair adds nothing twice
    assert SyncJobRecord.objects.filter(membership__tenant=tenant).count() == 1

    _run(tenant, "offboard", django_capture_on_commit_callbacks)

    assert not TenantOffsite.objects.filter(tenant=tenant).exists()
    with client_for_host(hosts.dst) as dst:
        assert [job.id for job in dst.sync_job_list()] == []


def test_a_failing_offsite_include_never_fails_the_onboarding(
    hosts, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store,
        scope=OffsitePolicy.Scope.TENANTS, auto_include_tenants=True,
    )  # fmt: skip
    tenant = tenant_services.tenant_create(slug="beta", name="Beta", datastore=hosts.src_store)

    def broken(*args, **kwargs):
        raise RuntimeError("offsite host on fire")

    monkeypatch.setattr(services, "tenant_offsite_include", broken)
    _run(tenant, "onboard", django_capture_on_commit_callbacks)

    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_the_host_drift_check_covers_sync_jobs_and_the_host_repair_restores_them(hosts) -> None:
    policy = services.policy_create(source_datastore=hosts.src_store, target_datastore=hosts.dst_store)
    record = SyncJobRecord.objects.get(policy=policy)
    with client_for_host(hosts.dst) as dst:
        dst.sync_job_delete(record.job_id)

    findings = tenant_services.pbshost_drift_check(host_id=hosts.dst.pk)

    offsite = [f for f in findings if f.get("source") == "offsite"]
    assert [(f["kind"], f["object"], f["repairable"]) for f in offsite] == [
        ("offsite sync-job", record.job_id, True)
    ]
    assert offsite[0]["detail"].startswith("missing")

    tenant_services.pbshost_repair(host_id=hosts.dst.pk)

    with client_for_host(hosts.dst) as dst:
        assert dst.sync_job_get(record.job_id).store == "store2"
    assert [f for f in tenant_services.pbshost_drift_check(host_id=hosts.dst.pk) if f.get("source")] == []


def test_metering_stores_the_measured_offsite_copy_with_each_sample(hosts) -> None:
    import time

    from billing import services as billing_services
    from billing.models import UsageSample

    acme = hosts.tenant("acme", status=Tenant.Status.ACTIVE)
    hosts.seed(acme, "vm", "100", [int(time.time()) - 86_400], size=3 * 2**30)
    policy = services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store,
        scope=OffsitePolicy.Scope.TENANTS, auto_include_tenants=True,
    )  # fmt: skip
    services.tenant_offsite_include(acme)
    services.sync_job_run(record=SyncJobRecord.objects.get(policy=policy))
    services.offsite_status_refresh(host=hosts.dst)

    run = billing_services.metering_run_start()
    billing_services.metering_collect_run_inline(run=run)

    sample = UsageSample.objects.get(tenant=acme)
    assert sample.logical_bytes == 3 * 2**30
    assert sample.offsite_bytes == 3 * 2**30
