"""Quota policies: per plan and per tenant soft and hard limits, validated and audited."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from alerts.models import (
    PlanQuota,
    QuotaAction,
    QuotaState,
    TenantQuota,
)
from alerts.services.base import QuotaError
from alerts.services.quota import quota_evaluate_tenant
from audit.services import audit_record
from core.actors import actor_or_none
from tenants.models import Tenant


def _policy_fields_validate(
    *,
    soft_limit_gib: Decimal | None,
    hard_limit_gib: Decimal | None,
    warning_percent: int | None,
    grace_days: int | None,
    action: str | None,
) -> None:
    for name, value in (("soft limit", soft_limit_gib), ("hard limit", hard_limit_gib)):
        if value is not None and value <= 0:
            raise QuotaError(f"the {name} must be positive")
    if soft_limit_gib is not None and hard_limit_gib is not None and hard_limit_gib < soft_limit_gib:
        raise QuotaError("the hard limit must not be below the soft limit")
    if warning_percent is not None and not 1 <= warning_percent <= 100:
        raise QuotaError("the warning percentage must be between 1 and 100")
    if grace_days is not None and grace_days > 365:
        raise QuotaError("the grace period must be at most 365 days")
    if action and action not in QuotaAction.values:
        raise QuotaError(f"unknown action {action!r}")


def plan_quota_set(
    *,
    plan_id: int,
    soft_limit_gib: Decimal | None,
    hard_limit_gib: Decimal | None,
    warning_percent: int | None = None,
    grace_days: int | None = None,
    action: str | None = None,
    actor: Any = None,
) -> PlanQuota:
    """Set a plan's quota and re-evaluate its tenants (lifting enforcement where it no longer
    applies)."""
    _policy_fields_validate(
        soft_limit_gib=soft_limit_gib, hard_limit_gib=hard_limit_gib,
        warning_percent=warning_percent, grace_days=grace_days, action=action,
    )
    with transaction.atomic():
        row, _ = PlanQuota.objects.update_or_create(
            plan_id=plan_id,
            defaults={
                "soft_limit_gib": soft_limit_gib, "hard_limit_gib": hard_limit_gib,
                "warning_percent": warning_percent, "grace_days": grace_days, "action": action or "",
            },
        )
        audit_record(
            action="quota.plan_set", actor=actor, target=f"plan:{plan_id}",
            detail=_policy_detail(row),
        )
        tenant_ids = list(
            QuotaState.objects.filter(tenant__plan_id=plan_id).values_list("tenant_id", flat=True)
        )
        transaction.on_commit(lambda: _reevaluate_later(tenant_ids))
    return row


def tenant_quota_set(
    *,
    tenant_id: int,
    soft_limit_gib: Decimal | None,
    hard_limit_gib: Decimal | None,
    warning_percent: int | None = None,
    grace_days: int | None = None,
    action: str | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> QuotaState:
    """Override the plan's quota for one tenant (None = use the plan's) and re-evaluate now."""
    _policy_fields_validate(
        soft_limit_gib=soft_limit_gib, hard_limit_gib=hard_limit_gib,
        warning_percent=warning_percent, grace_days=grace_days, action=action,
    )
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        row, _ = TenantQuota.objects.update_or_create(
            tenant=tenant,
            defaults={
                "soft_limit_gib": soft_limit_gib, "hard_limit_gib": hard_limit_gib,
                "warning_percent": warning_percent, "grace_days": grace_days,
                "action": action or "", "updated_by": actor_or_none(actor),
            },
        )
        audit_record(
            action="quota.tenant_set", actor=actor, tenant=tenant, target=tenant.slug,
            detail=_policy_detail(row),
        )
        return quota_evaluate_tenant(tenant_id=tenant_id, now=now, trigger="limits changed")


def tenant_quota_clear(*, tenant_id: int, actor: Any = None, now: datetime | None = None) -> QuotaState:
    """Drop a tenant's override so the plan's quota applies again."""
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        deleted, _ = TenantQuota.objects.filter(tenant=tenant).delete()
        if deleted:
            audit_record(action="quota.tenant_cleared", actor=actor, tenant=tenant, target=tenant.slug)
        return quota_evaluate_tenant(tenant_id=tenant_id, now=now, trigger="limits changed")


def _policy_detail(row: PlanQuota | TenantQuota) -> dict[str, Any]:
    return {
        "soft_limit_gib": None if row.soft_limit_gib is None else str(row.soft_limit_gib),
        "hard_limit_gib": None if row.hard_limit_gib is None else str(row.hard_limit_gib),
        "warning_percent": row.warning_percent,
        "grace_days": row.grace_days,
        "action": row.action,
    }


def _reevaluate_later(tenant_ids: list[int]) -> None:
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    for tenant_id in tenant_ids:
        tasks.quota_evaluate.delay(tenant_id)
