"""The alert lifecycle: raise (or keep), resolve, and queue notices."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from alerts import selectors
from alerts.models import (
    Alert,
)
from alerts.services.base import _now
from alerts.services.delivery import webhook_deliveries_create
from tenants.models import Tenant


def alert_raise(
    *,
    tenant: Tenant,
    kind: str,
    title: str,
    key: str = "",
    message: str = "",
    severity: str = Alert.Severity.WARNING,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Alert:
    """Open (or refresh) the alert for the condition (tenant, kind, key) and announce it,
    at most once per day per condition (over all its alerts, so a flapping condition does
    not announce more often either). Notices are sent after commit."""
    now = _now(now)
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(tenant=tenant, kind=kind, key=key, status=Alert.Status.OPEN)
            .first()
        )
        if alert is None:
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        tenant=tenant, kind=kind, key=key, severity=severity, title=title[:200],
                        message=message, detail=detail or {}, opened_at=now, last_seen_at=now,
                    )
            except IntegrityError:
                # Someone opened it concurrently; refresh theirs.
                alert = Alert.objects.select_for_update().get(
                    tenant=tenant, kind=kind, key=key, status=Alert.Status.OPEN
                )
        Alert.objects.filter(pk=alert.pk).update(
            last_seen_at=now, title=title[:200], message=message, severity=severity, detail=detail or {}
        )
        last = selectors.alert_condition_last_notified(tenant_id=tenant.pk, kind=kind, key=key)
        if last is None or now - last >= selectors.ALERT_REPEAT_INTERVAL:
            Alert.objects.filter(pk=alert.pk).update(last_notified_at=now, notify_count=F("notify_count") + 1)
            alert.refresh_from_db()
            _notices_queue(alert=alert, event="alert.raised", now=now)
        else:
            alert.refresh_from_db()
    return alert


def alert_resolve(
    *,
    tenant: Tenant,
    kind: str,
    key: str = "",
    now: datetime | None = None,
    announce: bool = True,
    resolution: str = Alert.Resolution.RECOVERED,
) -> Alert | None:
    """Close the open alert of the condition, if any. The recovery is announced once, and only
    if the alert itself was announced."""
    now = _now(now)
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(tenant=tenant, kind=kind, key=key, status=Alert.Status.OPEN)
            .first()
        )
        if alert is None:
            return None
        alert.status = Alert.Status.RESOLVED
        alert.resolved_at = now
        alert.resolution = resolution
        fields = ["status", "resolved_at", "resolution"]
        if announce and alert.notify_count > 0 and alert.recovery_notified_at is None:
            alert.recovery_notified_at = now
            fields.append("recovery_notified_at")
            alert.save(update_fields=fields)
            _notices_queue(alert=alert, event="alert.resolved", now=now)
        else:
            alert.save(update_fields=fields)
    return alert


def alert_resolve_all_except(
    *, tenant: Tenant, kind: str, keep_keys: set[str], now: datetime | None = None
) -> int:
    """Resolve (with recovery notices) every open alert of ``kind`` whose key is not kept."""
    keys = list(
        Alert.objects.filter(tenant=tenant, kind=kind, status=Alert.Status.OPEN)
        .exclude(key__in=keep_keys)
        .values_list("key", flat=True)
    )
    for key in keys:
        alert_resolve(tenant=tenant, kind=kind, key=key, now=now)
    return len(keys)


def _notices_queue(*, alert: Alert, event: str, now: datetime) -> None:
    """Queue the e-mail and the webhook deliveries for an announcement (inside the caller's
    transaction; sending happens after commit)."""
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    alert_id = alert.pk
    transaction.on_commit(lambda: tasks.alert_email_send.delay(alert_id, event))
    for delivery in webhook_deliveries_create(alert=alert, event=event, now=now):
        delivery_id = delivery.pk
        transaction.on_commit(lambda d=delivery_id: tasks.webhook_deliver.delay(d))
