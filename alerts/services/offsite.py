"""Offsite staleness alerts: one per tenant and offsite policy, owned here."""

from __future__ import annotations

from datetime import datetime

from alerts.models import (
    Alert,
)
from alerts.services.base import _now
from alerts.services.lifecycle import alert_raise, alert_resolve
from offsite.models import TenantOffsite
from tenants.models import Tenant


def offsite_key(policy_id: int) -> str:
    """The alert key of one offsite policy's copy of a tenant."""
    return f"policy-{policy_id}"


def offsite_stale_alert_sync(*, membership: TenantOffsite, now: datetime | None = None) -> bool:
    """The one rule for a tenant's ``offsite_stale`` alert of one policy: open (or keep) it while
    the copy is stale, resolve it once it caught up. Called for each membership offsite's status
    refresh just re-computed (through ``offsite_staleness_refreshed``) and by the hourly sweep.
    Returns whether the copy is stale."""
    key = offsite_key(membership.policy_id)
    if not membership.stale or membership.tenant.status != Tenant.Status.ACTIVE:
        alert_resolve(tenant=membership.tenant, kind=Alert.Kind.OFFSITE_STALE, key=key, now=now)
        return False
    alert_raise(
        tenant=membership.tenant, kind=Alert.Kind.OFFSITE_STALE, key=key,
        title="Offsite copy is behind",
        message=membership.stale_reason or "The offsite copy is older than the policy allows.",
        severity=Alert.Severity.WARNING, now=now,
        detail={
            "policy_id": membership.policy_id,
            "source_newest_at": membership.source_newest_at.isoformat() if membership.source_newest_at else None,
            "target_newest_at": membership.target_newest_at.isoformat() if membership.target_newest_at else None,
        },
    )  # fmt: skip
    return True


def offsite_staleness_alerts_sync(*, now: datetime | None = None) -> int:
    """Hourly sweep: the alert of every offsite membership follows its stale flag (set by
    offsite's status refresh), and alerts of memberships that no longer exist are resolved.
    Returns the number of stale copies."""
    now = _now(now)
    kept: dict[int, set[str]] = {}
    stale = 0
    for membership in TenantOffsite.objects.select_related("tenant", "policy"):
        if offsite_stale_alert_sync(membership=membership, now=now):
            stale += 1
            kept.setdefault(membership.tenant_id, set()).add(offsite_key(membership.policy_id))
    orphans = Alert.objects.filter(kind=Alert.Kind.OFFSITE_STALE, status=Alert.Status.OPEN).select_related("tenant")
    for alert in orphans:
        if alert.key not in kept.get(alert.tenant_id, set()):
            alert_resolve(tenant=alert.tenant, kind=alert.kind, key=alert.key, now=now)
    return stale
