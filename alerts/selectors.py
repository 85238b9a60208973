"""Reads for quotas, alerts and webhooks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, QuerySet

from alerts import quota
from alerts.models import (
    Alert,
    PlanQuota,
    QuotaState,
    QuotaTransition,
    TenantAlertSettings,
    TenantQuota,
    WebhookDelivery,
)
from billing.models import METRIC_FIELDS, UsageSample, metric_value_expression
from plans.models import Plan

DEFAULT_METRIC = Plan.Metric.LOGICAL

# How often the same condition may be announced.
ALERT_REPEAT_INTERVAL = timedelta(days=1)


def _tenant_id(tenant: Any) -> int:
    return tenant if isinstance(tenant, int) else tenant.pk


def tenant_writes_blocked(tenant: Any) -> bool:
    """True while quota enforcement keeps the tenant's write ACLs removed on PBS (or is about
    to). The tenants drift check must not put those ACLs back, and resuming a suspended
    tenant must leave them off."""
    row = (
        QuotaState.objects.filter(tenant_id=_tenant_id(tenant))
        .values("writes_blocked", "state", "action", "exempt")
        .first()
    )
    if row is None:
        return False
    wanted = (
        row["state"] == QuotaState.State.ENFORCED
        and row["action"] == quota.STOP_WRITES
        and not row["exempt"]
    )
    return bool(row["writes_blocked"] or wanted)


def quota_policy_layers(tenant: Any) -> tuple[quota.PolicyLayer | None, quota.PolicyLayer | None]:
    """The plan's quota settings and the tenant's override, as pure policy layers."""
    plan_layer = None
    if getattr(tenant, "plan_id", None):
        plan_quota = PlanQuota.objects.filter(plan_id=tenant.plan_id).first()
        plan_layer = _layer(plan_quota)
    override = TenantQuota.objects.filter(tenant_id=_tenant_id(tenant)).first()
    return plan_layer, _layer(override)


def _layer(row: PlanQuota | TenantQuota | None) -> quota.PolicyLayer | None:
    if row is None:
        return None
    return quota.PolicyLayer(
        soft_limit_gib=row.soft_limit_gib,
        hard_limit_gib=row.hard_limit_gib,
        warning_percent=row.warning_percent,
        grace_days=row.grace_days,
        action=row.action or None,
    )


def quota_policy_for_tenant(tenant: Any) -> quota.QuotaPolicy:
    return quota.policy_merge(*quota_policy_layers(tenant))


def tenant_metric(tenant: Any) -> str:
    plan = getattr(tenant, "plan", None)
    metric = getattr(plan, "metric", None) or DEFAULT_METRIC
    return metric if metric in METRIC_FIELDS else DEFAULT_METRIC


@dataclass(frozen=True)
class UsageFigure:
    sample_id: int
    usage_bytes: int | None
    taken_at: datetime
    newest_backup_at: datetime | None


def usage_latest_for_tenant(*, tenant_id: int, metric: str) -> UsageFigure | None:
    """The tenant's newest usage sample (by day, then time taken) for the metric.

    Always the newest, not the one a signal named: a re-collected or back-filled older day
    must not replace a newer figure."""
    metric = metric if metric in METRIC_FIELDS else DEFAULT_METRIC
    row = (
        UsageSample.objects.filter(tenant_id=tenant_id)
        .order_by("-day", "-taken_at", "-id")
        .annotate(usage=metric_value_expression(metric))  # the figure billing bills, fallback included
        .values("id", "usage", "taken_at", "newest_backup_at")
        .first()
    )
    if row is None:
        return None
    return UsageFigure(
        sample_id=row["id"], usage_bytes=row["usage"], taken_at=row["taken_at"],
        newest_backup_at=row["newest_backup_at"],
    )


def quota_state_for_tenant(tenant_id: int) -> QuotaState | None:
    return QuotaState.objects.filter(tenant_id=tenant_id).first()


def quota_states_list(*, states: list[str] | None = None) -> QuerySet[QuotaState]:
    qs = QuotaState.objects.select_related("tenant", "tenant__plan").order_by("tenant__slug")
    if states:
        qs = qs.filter(state__in=states)
    return qs


def tenant_quota_override(tenant_id: int) -> TenantQuota | None:
    return TenantQuota.objects.filter(tenant_id=tenant_id).first()


def open_alert_counts() -> dict[str, int]:
    """Open alerts per severity, for the dashboard header."""
    rows = (
        Alert.objects.filter(status=Alert.Status.OPEN)
        .values("severity")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = dict.fromkeys(Alert.Severity.values, 0)
    counts.update({row["severity"]: row["n"] for row in rows})
    return counts


def quota_transitions_for_tenant(tenant_id: int, *, limit: int = 50) -> QuerySet[QuotaTransition]:
    return QuotaTransition.objects.filter(tenant_id=tenant_id)[:limit]


def open_alerts_for_tenant(tenant_id: int) -> QuerySet[Alert]:
    """The tenant's open alerts, most severe first (for the client page partial)."""
    return (
        Alert.objects.filter(tenant_id=tenant_id, status=Alert.Status.OPEN)
        .select_related("tenant")
        .order_by("severity", "-opened_at")
    )


def alerts_list(
    *, status: str | None = Alert.Status.OPEN, tenant_id: int | None = None, kind: str | None = None
) -> QuerySet[Alert]:
    qs = Alert.objects.select_related("tenant")
    if status:
        qs = qs.filter(status=status)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-opened_at", "-id")


def alert_condition_last_notified(*, tenant_id: int, kind: str, key: str) -> datetime | None:
    """When this condition was last announced, over all its alerts (open or resolved)."""
    return Alert.objects.filter(tenant_id=tenant_id, kind=kind, key=key).aggregate(
        last=Max("last_notified_at")
    )["last"]


def alert_recipients_for_tenant(tenant: Any) -> list[str]:
    """The tenant's contacts: its contact e-mail plus its active client users with an address."""
    from accounts.models import Role

    emails: list[str] = []
    if tenant.contact_email:
        emails.append(tenant.contact_email)
    users = tenant.client_users.filter(is_active=True, role=Role.CLIENT).exclude(email="")
    for email in users.values_list("email", flat=True).order_by("email"):
        if email.lower() not in {e.lower() for e in emails}:
            emails.append(email)
    return emails


def alert_staff_recipients() -> list[str]:
    return list(settings.PORTAL_ALERT_EMAILS)


def tenant_alert_settings(tenant_id: int) -> TenantAlertSettings | None:
    return TenantAlertSettings.objects.filter(tenant_id=tenant_id).first()


def backup_max_age_hours(tenant: Any) -> int:
    own = TenantAlertSettings.objects.filter(tenant_id=_tenant_id(tenant)).values_list(
        "backup_max_age_hours", flat=True
    ).first()
    return own or int(settings.PORTAL_ALERT_BACKUP_MAX_AGE_HOURS)


def webhook_deliveries_list(*, tenant_id: int | None = None, status: str | None = None) -> QuerySet[WebhookDelivery]:
    qs = WebhookDelivery.objects.select_related("tenant")
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")
