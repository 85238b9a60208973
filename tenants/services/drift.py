"""Drift checks of tenants and hosts, and host repair."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.signals import send_logged
from pbsclient.errors import PbsError
from tenants import drift
from tenants.models import (
    OnboardingRun,
    PbsHost,
    Tenant,
)
from tenants.pbs import client_for_host
from tenants.pbsstate import LiveState, PbsState, SnapshotState
from tenants.services.base import _lifecycle_error
from tenants.services.runs import tenant_repair
from tenants.signals import host_drift_checking, host_repair_requested


def _save_tenant_findings(tenant: Tenant, findings: list[dict[str, Any]], actor: Any, now: Any) -> None:
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(drift_findings=findings, drift_checked_at=now)
        audit_record(
            action="tenant.drift.check", actor=actor, tenant=tenant, target=tenant.slug,
            result="ok" if not findings else "failed",
            detail={"findings": len(findings), "kinds": sorted({f["kind"] for f in findings})},
        )  # fmt: skip


def tenant_drift_check(*, tenant_id: int, actor: Any = None, state: PbsState | None = None) -> list[dict[str, Any]]:
    """Compare one tenant with PBS and store the findings on the tenant."""
    tenant = Tenant.objects.select_related("host", "datastore").get(pk=tenant_id)
    if tenant.host is None:
        return []
    try:
        if state is None:
            with client_for_host(tenant.host) as client:
                findings = drift.tenant_findings(tenant, LiveState(client))
        else:
            findings = drift.tenant_findings(tenant, state)
    except PbsError as exc:
        raise _lifecycle_error(exc, host=tenant.host) from exc
    _save_tenant_findings(tenant, findings, actor, timezone.now())
    return findings


def pbshost_drift_check(*, host_id: int, actor: Any = None) -> list[dict[str, Any]]:
    """Drift of every tenant on a host, plus tenant-like objects no tenant owns; one
    snapshot of the host's lists for all of it."""
    host = PbsHost.objects.get(pk=host_id)
    tenants = list(
        Tenant.objects.filter(host=host)
        .exclude(status__in=(Tenant.Status.PENDING, Tenant.Status.ONBOARDING))
        .select_related("datastore", "host")
    )
    now = timezone.now()
    all_findings: list[dict[str, Any]] = []
    try:
        with client_for_host(host) as client:
            state = SnapshotState(client)
            per_tenant = {tenant.pk: drift.tenant_findings(tenant, state) for tenant in tenants}
            unknown = drift.host_unknown_findings(host, state)
    except PbsError as exc:
        raise _lifecycle_error(exc, host=host) from exc
    for tenant in tenants:
        findings = per_tenant[tenant.pk]
        if findings != tenant.drift_findings or tenant.drift_checked_at is None:
            Tenant.objects.filter(pk=tenant.pk).update(drift_findings=findings, drift_checked_at=now)
        else:
            Tenant.objects.filter(pk=tenant.pk).update(drift_checked_at=now)
        all_findings += [{**f, "tenant": tenant.slug} for f in findings]
    all_findings += [{**f, "tenant": None} for f in unknown]
    all_findings += _other_apps_findings(host)
    with transaction.atomic():
        PbsHost.objects.filter(pk=host.pk).update(drift_findings=all_findings, drift_checked_at=now)
        audit_record(
            action="host.drift.check", actor=actor, target=host.name,
            result="ok" if not all_findings else "failed",
            detail={"findings": len(all_findings), "tenants": len(tenants)},
        )  # fmt: skip
    return all_findings


def _other_apps_findings(host: PbsHost) -> list[dict[str, Any]]:
    """Drift of what other apps keep on the host (offsite remotes and sync jobs)."""
    findings: list[dict[str, Any]] = []
    for _, response in send_logged(host_drift_checking, PbsHost, host=host):
        if isinstance(response, Exception):
            findings.append(drift.finding("check-failed", host.name, f"{response}", repairable=False, tenant=None))
        else:
            findings += [{"tenant": None, **f} for f in response or []]
    return findings


def pbshost_repair(*, host_id: int, actor: Any = None) -> list[OnboardingRun]:
    """Repair every tenant of the host whose last drift check found something repairable."""
    tenant_ids = [
        tenant.pk
        for tenant in Tenant.objects.filter(
            host_id=host_id, status__in=(Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)
        ).only("id", "drift_findings")
        if any(f.get("repairable") for f in tenant.drift_findings)
    ]
    runs = []
    for tenant_id in tenant_ids:
        run, _ = tenant_repair(tenant_id=tenant_id, actor=actor)
        runs.append(run)
    send_logged(host_repair_requested, PbsHost, host=PbsHost.objects.get(pk=host_id), actor=actor)
    return runs
