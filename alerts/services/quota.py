"""Quota evaluation: a tenant usage against its limits, grace, exemptions, and the quota alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction

from alerts import quota, selectors
from alerts.models import (
    Alert,
    QuotaState,
    QuotaTransition,
)
from alerts.services.base import QUOTA_ALERT_KINDS, QUOTA_KIND_LEVEL, QuotaError, _gib, _now
from alerts.services.health import backup_age_from_metering
from alerts.services.lifecycle import alert_raise, alert_resolve
from audit.services import audit_record
from core.actors import actor_or_none
from tenants.models import Tenant


def quota_evaluate_tenant(
    *,
    tenant_id: int,
    sample_id: int | None = None,
    usage_bytes: int | None = None,
    now: datetime | None = None,
    trigger: str = "sample",
) -> QuotaState:
    """Evaluate a tenant's quota and record the outcome.

    Steps:
    1. Lock the tenant's QuotaState (created on first use).
    2. Take the usage: after a sample (``sample_id`` given) the tenant's newest
       billing.UsageSample on the plan's metric (so out-of-order tasks and back-filled days
       never win over a newer figure); else ``usage_bytes``, or the last stored figure
       (limits changed, grace extended, exemption).
    3. Run the pure state machine (alerts.quota.quota_evaluate).
    4. Store the state; on a change write a QuotaTransition and an audit row.
    5. Raise/resolve the quota alerts (notices go out after commit).
    6. If PBS write rights must change, enqueue the enforcement sync after commit.
    """
    now = _now(now)
    with transaction.atomic():
        tenant = Tenant.objects.select_related("plan").get(pk=tenant_id)
        QuotaState.objects.get_or_create(tenant=tenant)
        state = QuotaState.objects.select_for_update().get(tenant=tenant)
        metric = selectors.tenant_metric(tenant)

        if sample_id is not None:
            figure = selectors.usage_latest_for_tenant(tenant_id=tenant_id, metric=metric)
            if figure is None:
                return state
            usage = figure.usage_bytes
            state.last_sample_id = figure.sample_id
        elif usage_bytes is not None:
            usage = usage_bytes
        else:
            usage = state.usage_bytes

        policy = selectors.quota_policy_for_tenant(tenant)
        result = quota.quota_evaluate(
            policy=policy, usage_bytes=usage, now=now,
            over_since=state.over_since, grace_ends_at=state.grace_ends_at, exempt=state.exempt,
        )
        previous = state.state
        state.state = result.state
        state.metric = metric
        state.usage_bytes = usage
        state.soft_limit_bytes = policy.soft_limit_bytes
        state.hard_limit_bytes = policy.hard_limit_bytes
        state.warning_bytes = policy.warning_bytes
        state.action = policy.action
        state.over_since = result.over_since
        state.grace_ends_at = result.grace_ends_at
        state.evaluated_at = now
        if result.state != previous:
            state.state_changed_at = now
            if result.state == quota.ENFORCED:
                state.enforced_at = now
            elif previous == quota.ENFORCED:
                state.enforced_at = None
            QuotaTransition.objects.create(
                tenant=tenant, from_state=previous, to_state=result.state, usage_bytes=usage,
                reason=f"{trigger}: {result.reason}"[:255],
                sample_id=state.last_sample_id if sample_id is not None else None, created_at=now,
            )
            audit_record(
                action="quota.transition", tenant=tenant, target=tenant.slug,
                detail={
                    "from": previous, "to": result.state, "usage_bytes": usage,
                    "reason": result.reason, "trigger": trigger,
                    "grace_ends_at": result.grace_ends_at.isoformat() if result.grace_ends_at else None,
                },
            )
        state.save()
        _quota_alerts_sync(tenant=tenant, state=state, previous=previous, now=now)
        if state.wants_writes_blocked != state.writes_blocked:
            transaction.on_commit(lambda: _enforcement_sync_later(tenant_id))
    return state


def tenant_usage_sampled(*, tenant_id: int, sample_id: int, now: datetime | None = None) -> QuotaState:
    """A metering sample was stored: evaluate the quota, and the backup age from the sample."""
    state = quota_evaluate_tenant(tenant_id=tenant_id, sample_id=sample_id, now=now, trigger="sample")
    backup_age_from_metering(tenant_id=tenant_id, now=now)
    return state


def _enforcement_sync_later(tenant_id: int) -> None:
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    tasks.quota_enforcement_sync.delay(tenant_id)


def _quota_alerts_sync(*, tenant: Tenant, state: QuotaState, previous: str, now: datetime) -> None:
    """Keep exactly one quota alert open for the current level.

    Moving up supersedes the lower alert quietly (the new one is announced); moving down
    resolves the higher alert with a recovery notice."""
    target_kind = QUOTA_ALERT_KINDS.get(state.state)
    level = quota.STATE_ORDER[state.state]
    for kind, kind_level in QUOTA_KIND_LEVEL.items():
        if kind == target_kind:
            continue
        recovered = kind_level > level
        alert_resolve(
            tenant=tenant, kind=kind, now=now, announce=recovered,
            resolution=Alert.Resolution.RECOVERED if recovered else Alert.Resolution.SUPERSEDED,
        )
    if target_kind is None:
        return
    usage = _gib(state.usage_bytes)
    soft = _gib(state.soft_limit_bytes)
    if state.state == quota.WARNING:
        title = f"Backup storage at {state.usage_percent_of_soft}% of the quota"
        message = f"Usage is {usage} of a {soft} soft limit."
        severity = Alert.Severity.INFO
    elif state.state == quota.OVER:
        grace = state.grace_ends_at.strftime("%Y-%m-%d %H:%M %Z") if state.grace_ends_at else "-"
        title = "Backup storage over the quota"
        message = f"Usage is {usage}, over the {soft} soft limit. Grace period ends {grace}."
        if state.exempt:
            message += " The tenant is exempt from enforcement."
        elif state.action == quota.STOP_WRITES:
            message += " After that, new backups are refused; restores keep working."
        else:
            message += " After that, the overage is billed."
        severity = Alert.Severity.WARNING
    else:
        title = "Backup quota enforced"
        if state.action == quota.STOP_WRITES:
            message = (
                f"Usage is {usage} (soft limit {soft}, hard limit {_gib(state.hard_limit_bytes)}). "
                "New backups are refused until usage drops below the soft limit or the limit "
                "is raised; existing backups stay and restores keep working."
            )
        else:
            message = f"Usage is {usage}, over the {soft} soft limit; the overage is billed."
        severity = Alert.Severity.CRITICAL
    alert_raise(
        tenant=tenant, kind=target_kind, title=title, message=message, severity=severity, now=now,
        detail={
            "state": state.state, "usage_bytes": state.usage_bytes,
            "soft_limit_bytes": state.soft_limit_bytes, "hard_limit_bytes": state.hard_limit_bytes,
            "action": state.action,
            "grace_ends_at": state.grace_ends_at.isoformat() if state.grace_ends_at else None,
        },
    )


def quota_grace_extend(
    *, tenant_id: int, until: datetime, reason: str, actor: Any, now: datetime | None = None
) -> QuotaState:
    """Move the end of a running (or ended) grace period to ``until``; lifts enforcement that
    came from the grace ending."""
    now = _now(now)
    reason = reason.strip()
    if not reason:
        raise QuotaError("a reason is required")
    if until <= now:
        raise QuotaError("the new grace end must be in the future")
    with transaction.atomic():
        state = QuotaState.objects.select_for_update().select_related("tenant").filter(tenant_id=tenant_id).first()
        if state is None or state.over_since is None:
            raise QuotaError("the tenant is not over its quota, there is no grace period to extend")
        if state.hard_limit_bytes is not None and (state.usage_bytes or 0) >= state.hard_limit_bytes:
            raise QuotaError(
                "usage is at or above the hard limit, which no grace covers: raise the limit or "
                "exempt the tenant"
            )
        previous_end = state.grace_ends_at
        QuotaState.objects.filter(pk=state.pk).update(
            grace_ends_at=until, grace_extended_at=now,
            grace_extended_by=actor_or_none(actor), grace_extension_reason=reason,
        )
        audit_record(
            action="quota.grace_extended", actor=actor, tenant=state.tenant, target=state.tenant.slug,
            detail={
                "from": previous_end.isoformat() if previous_end else None,
                "to": until.isoformat(), "reason": reason,
            },
        )
        return quota_evaluate_tenant(tenant_id=tenant_id, now=now, trigger="grace extended")


def quota_exempt_set(
    *, tenant_id: int, exempt: bool, reason: str, actor: Any, now: datetime | None = None
) -> QuotaState:
    """Exempt a tenant from enforcement (or end the exemption); restores write rights at once."""
    now = _now(now)
    reason = reason.strip()
    if not reason:
        raise QuotaError("a reason is required")
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        QuotaState.objects.get_or_create(tenant=tenant)
        QuotaState.objects.select_for_update().filter(tenant=tenant).update(
            exempt=exempt, exempt_reason=reason, exempt_at=now,
            exempt_by=actor_or_none(actor),
        )
        audit_record(
            action="quota.exempted" if exempt else "quota.exemption_ended", actor=actor,
            tenant=tenant, target=tenant.slug, detail={"reason": reason},
        )
        return quota_evaluate_tenant(
            tenant_id=tenant_id, now=now, trigger="exempted" if exempt else "exemption ended"
        )


def quota_evaluate_requested(*, tenant_id: int, sample_id: int | None = None) -> QuotaState | None:
    """A task asked for an evaluation: after a sample, or after the limits changed. A tenant
    deleted meanwhile needs none."""
    if not Tenant.objects.filter(pk=tenant_id).exists():
        return None
    if sample_id is None:
        return quota_evaluate_tenant(tenant_id=tenant_id, trigger="re-evaluation")
    return tenant_usage_sampled(tenant_id=tenant_id, sample_id=sample_id)
