"""Which tenants an offsite policy copies: enable, disable, follow onboarding and offboarding."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import audit_record
from offsite.models import OffsitePolicy, SyncJobRecord, TenantOffsite
from offsite.services.base import OffsiteError, sync_options_clean
from offsite.services.jobs import _record_for, _source_path, sync_job_ensure, sync_job_remove
from offsite.services.remotes import remote_grant_read, remote_revoke_read


def _tenant_job_ensure(*, membership: TenantOffsite, actor: Any) -> SyncJobRecord:
    policy, tenant = membership.policy, membership.tenant
    if not tenant.namespace:
        raise OffsiteError(f"tenant {tenant.slug} has no namespace yet")
    remote_grant_read(
        remote=policy.remote, path=_source_path(policy, tenant), tenant=tenant, actor=actor
    )
    record = _record_for(policy=policy, membership=membership)
    return sync_job_ensure(record=record, actor=actor)


def tenant_offsite_enable(
    *, tenant: Any, policy: OffsitePolicy, max_depth: int | None = None, actor: Any = None
) -> TenantOffsite:
    """Put a tenant into a policy (its own job for a tenants-scope policy). Safe to re-run."""
    if tenant.datastore_id != policy.source_datastore_id:
        raise ValidationError({"policy": "the policy replicates another datastore"})
    if max_depth is not None:
        sync_options_clean(max_depth=max_depth, remote_ns=tenant.namespace)
    with transaction.atomic():
        membership, created = TenantOffsite.objects.get_or_create(
            tenant=tenant, policy=policy, defaults={"max_depth": max_depth}
        )
        if not created and max_depth is not None and membership.max_depth != max_depth:
            membership.max_depth = max_depth
            membership.save(update_fields=["max_depth"])
        if created:
            audit_record(
                action="offsite.tenant_enable",
                actor=actor,
                tenant=tenant,
                target=f"policy/{policy.pk}",
            )
    if policy.scope == OffsitePolicy.Scope.TENANTS and policy.enabled:
        _tenant_job_ensure(membership=membership, actor=actor)
    return membership


def tenant_offsite_disable(*, tenant: Any, policy: OffsitePolicy, actor: Any = None) -> bool:
    """Take a tenant out of a tenants-scope policy: its job and source grant go, the offsite
    copy already made stays (delete it on the target if wanted)."""
    membership = TenantOffsite.objects.filter(tenant=tenant, policy=policy).first()
    if membership is None:
        return False
    if policy.scope == OffsitePolicy.Scope.DATASTORE:
        raise ValidationError(
            {"policy": "this policy copies the whole datastore; a tenant cannot leave it"}
        )
    _tenant_membership_remove(membership=membership, actor=actor)
    return True


def _tenant_membership_remove(*, membership: TenantOffsite, actor: Any) -> None:
    record = SyncJobRecord.objects.filter(membership=membership).select_related("host").first()
    if record is not None:
        sync_job_remove(record=record, actor=actor)
    policy, tenant = membership.policy, membership.tenant
    if policy.scope == OffsitePolicy.Scope.TENANTS:
        remote_revoke_read(
            remote=policy.remote, path=_source_path(policy, tenant), tenant=tenant, actor=actor
        )
    with transaction.atomic():
        audit_record(
            action="offsite.tenant_remove", actor=actor, tenant=tenant, target=f"policy/{policy.pk}"
        )
        membership.delete()


def tenant_offsite_include(tenant: Any, *, actor: Any = None) -> list[TenantOffsite]:
    """Onboarding hook: include a new tenant in the enabled policies of its datastore.

    Datastore-scope policies already copy it (a membership tracks its staleness); tenants-scope
    policies with auto-include get a tenant job. ``tenant`` is positional so the onboarding
    step can call ``tenant_offsite_include(tenant)``.
    """
    if not tenant.datastore_id:
        return []
    memberships = []
    policies = OffsitePolicy.objects.filter(
        source_datastore_id=tenant.datastore_id, enabled=True
    ).select_related("remote", "target_datastore")
    for policy in policies:
        if policy.scope == OffsitePolicy.Scope.TENANTS and not policy.auto_include_tenants:
            continue
        memberships.append(tenant_offsite_enable(tenant=tenant, policy=policy, actor=actor))
    return memberships


def tenant_offsite_remove(tenant: Any, *, actor: Any = None) -> int:
    """Offboarding hook: delete the tenant's tenant-scoped jobs, their source grants and its
    memberships. Returns how many memberships were removed. Safe to re-run."""
    memberships = list(
        TenantOffsite.objects.filter(tenant=tenant).select_related("policy__remote", "tenant")
    )
    for membership in memberships:
        _tenant_membership_remove(membership=membership, actor=actor)
    return len(memberships)
