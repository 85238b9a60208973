"""Rows the overview and the tenant list read: samples, alerts, quota states, offsite, runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from alerts.models import Alert, BackupHealth, QuotaState
from billing.models import UsageSample
from offsite.models import OffsitePolicy, Remote, TenantOffsite
from tenants.models import Datastore, OnboardingRun, Tenant
from tests.factories import make_datastore

GIB = 2**30


def sample(tenant: Tenant, day: dt.date, *, logical: int, latest: int | None = None, disk: int | None = None,
           newest_backup_at: dt.datetime | None = None, **fields: Any) -> UsageSample:  # fmt: skip
    return UsageSample.objects.create(
        tenant=tenant, day=day, taken_at=timezone.now(), host_name=tenant.host.name, datastore=tenant.datastore.name,
        namespace=tenant.namespace, logical_bytes=logical, latest_bytes=logical if latest is None else latest,
        snapshot_count=1, group_count=1, namespace_count=1, gc_disk_bytes=disk, newest_backup_at=newest_backup_at,
        **fields,
    )  # fmt: skip


def alert(tenant: Tenant, *, severity: str = Alert.Severity.WARNING, kind: str = Alert.Kind.BACKUP_STALE,
          status: str = Alert.Status.OPEN, key: str = "") -> Alert:  # fmt: skip
    now = timezone.now()
    return Alert.objects.create(tenant=tenant, kind=kind, key=key, severity=severity, status=status, title="t",
                                opened_at=now, last_seen_at=now)  # fmt: skip


def quota(tenant: Tenant, *, state: str, usage: int, soft: int | None) -> QuotaState:
    return QuotaState.objects.create(tenant=tenant, state=state, usage_bytes=usage, soft_limit_bytes=soft)


def backup_checked(tenant: Tenant, at: dt.datetime) -> BackupHealth:
    return BackupHealth.objects.create(tenant=tenant, newest_backup_at=at, checked_at=timezone.now())


def stale_offsite(tenant: Tenant, *, stale: bool = True) -> TenantOffsite:
    target: Datastore = make_datastore(name="offsite1")
    remote = Remote.objects.create(pulling_host=target.host, name=f"r{tenant.pk}", source_host=tenant.host,
                                   host="pbs-main.example", auth_id="sync@pbs!pull")  # fmt: skip
    policy = OffsitePolicy.objects.create(source_datastore=tenant.datastore, source_store=tenant.datastore.name,
                                          target_datastore=target, remote=remote)  # fmt: skip
    return TenantOffsite.objects.create(tenant=tenant, policy=policy, stale=stale, stale_reason="behind")


def failed_run(tenant: Tenant, *, hint: str = "Give the automation token Sys.Modify.") -> OnboardingRun:
    return OnboardingRun.objects.create(
        tenant=tenant, status=OnboardingRun.Status.FAILED, kind=OnboardingRun.Kind.ONBOARD,
        error="403 permission check failed", error_hint=hint,
    )  # fmt: skip
