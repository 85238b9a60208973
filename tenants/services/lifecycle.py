"""Tenant lifecycle on PBS: suspend, resume, writes on and off, retention changes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from pbsclient.errors import PbsError
from tenants.models import (
    OnboardingRun,
    Tenant,
)
from tenants.onboarding import (
    LIVE_STATUSES,
    context_for,
    step_backup_token,
    step_prune_job,
    step_token_acl,
    step_user_acl,
    verify_access,
)
from tenants.pbs import client_for_host
from tenants.services.base import LifecycleError, _lifecycle_error
from tenants.services.tenants import Retention, retention_problems


def _lock_onboarded_tenant(tenant_id: int, *, allowed: tuple[str, ...]) -> Tenant:
    tenant = Tenant.objects.select_for_update(of=("self",)).select_related("host", "datastore").get(pk=tenant_id)
    if tenant.status not in allowed:
        raise ValidationError(f"Not possible while the tenant is {tenant.status}.")
    if OnboardingRun.objects.filter(tenant=tenant, status__in=LIVE_STATUSES).exists():
        raise ValidationError("A run for this tenant is in progress; wait until it has finished.")
    return tenant


def _converge_access(tenant: Tenant, *, actor: Any, step: str) -> list[str]:
    """Bring ACLs and the backup token's enable flag in line with the tenant's status, then
    verify the effective privileges. Returns problems found by the verification."""
    if tenant.host is None:
        raise ValidationError("The tenant has no PBS host.")
    try:
        with client_for_host(tenant.host) as client:
            ctx = context_for(tenant, client, actor=actor)
            step_user_acl(ctx)
            step_backup_token(ctx)
            step_token_acl(ctx)
            return verify_access(ctx)
    except PbsError as exc:
        audit_record(action=f"tenant.{step}", actor=actor, tenant=tenant, target=tenant.slug,
                     result="failed", detail={"error": str(exc)[:500]})  # fmt: skip
        store = tenant.datastore.name if tenant.datastore else ""
        raise _lifecycle_error(exc, host=tenant.host, step="user_acl", store=store) from exc


def tenant_suspend(*, tenant_id: int, actor: Any = None, reason: str = "") -> Tenant:
    """Stop writes, keep data and restores: the user loses DatastorePowerUser and the backup
    token DatastoreBackup (and is disabled); DatastoreReader stays. Verified afterwards."""
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.ACTIVE,))
        tenant.status = Tenant.Status.SUSPENDED
        tenant.suspended_at = timezone.now()
        tenant.save(update_fields=["status", "suspended_at", "updated_at"])
        audit_record(action="tenant.suspend", actor=actor, tenant=tenant, target=tenant.slug,
                     detail={"reason": reason[:200]})  # fmt: skip
    problems = _converge_access(tenant, actor=actor, step="suspend")
    if problems:
        raise LifecycleError("Suspended, but PBS still differs: " + "; ".join(problems), "Run a drift repair.")
    return tenant


def tenant_resume(*, tenant_id: int, actor: Any = None) -> Tenant:
    """Give writes back (re-add the roles suspend removed, enable the backup token)."""
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.SUSPENDED,))
        tenant.status = Tenant.Status.ACTIVE
        tenant.suspended_at = None
        tenant.save(update_fields=["status", "suspended_at", "updated_at"])
        audit_record(action="tenant.resume", actor=actor, tenant=tenant, target=tenant.slug)
    problems = _converge_access(tenant, actor=actor, step="resume")
    if problems:
        raise LifecycleError("Resumed, but PBS still differs: " + "; ".join(problems), "Run a drift repair.")
    return tenant


def tenant_writes_set(*, tenant_id: int, allowed: bool, reason: str = "", actor: Any = None) -> Tenant:
    """Stop or restart writes without suspending (e.g. quota enforcement by billing or
    alerts): same PBS effect as suspend/resume, tracked separately so the two never undo
    each other. Idempotent: calling it again re-applies the state on PBS."""
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED))
        if tenant.writes_blocked != (not allowed):
            tenant.writes_blocked = not allowed
            tenant.writes_blocked_reason = "" if allowed else reason[:200]
            tenant.save(update_fields=["writes_blocked", "writes_blocked_reason", "updated_at"])
            audit_record(
                action="tenant.writes.unblock" if allowed else "tenant.writes.block", actor=actor,
                tenant=tenant, target=tenant.slug, detail={"reason": reason[:200]},
            )  # fmt: skip
    # Converge even when the flag already matched: an earlier call may have stored the flag
    # and then failed on PBS, and a retry must still finish the job (check-before-change).
    problems = _converge_access(tenant, actor=actor, step="writes")
    if problems:
        raise LifecycleError("PBS still differs: " + "; ".join(problems), "Run a drift repair.")
    return tenant


def tenant_retention_update(*, tenant_id: int, retention: Retention, actor: Any = None) -> Tenant:
    """Change retention: the prune job is updated on PBS (PUT, with ``delete`` for keep-*
    values that are cleared), or created if it was missing."""
    errors = retention_problems(retention)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update(of=("self",)).select_related("host", "datastore").get(pk=tenant_id)
        before = Retention.of(tenant)
        for field_name, value in retention.as_fields().items():
            setattr(tenant, field_name, value)
        tenant.save(update_fields=[*retention.as_fields(), "updated_at"])
        audit_record(
            action="tenant.retention.update", actor=actor, tenant=tenant, target=tenant.slug,
            detail={"before": before.as_fields(), "after": retention.as_fields()},
        )  # fmt: skip
    if tenant.status in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED) and tenant.host is not None:
        try:
            with client_for_host(tenant.host) as client:
                step_prune_job(context_for(tenant, client, actor=actor))
        except PbsError as exc:
            raise _lifecycle_error(
                exc, host=tenant.host, step="prune_job", store=tenant.datastore.name if tenant.datastore else ""
            ) from exc
    return tenant
