"""Delivery of alert notices: e-mail and signed webhooks with retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.template.loader import render_to_string

from alerts import selectors
from alerts.models import (
    Alert,
    TenantAlertSettings,
    WebhookDelivery,
)
from alerts.services.base import QuotaError, _now
from audit.services import audit_record
from core.crypto import decrypt_secret, encrypt_secret
from core.netguard import AddressRefused, AddressUnresolved, pinned_target, webhook_url_problem
from tenants.models import Tenant


def alert_email_send(*, alert_id: int, event: str) -> int:
    """Mail one announcement to the tenant's contacts and to MSP staff. Returns messages sent."""

    alert = Alert.objects.select_related("tenant").filter(pk=alert_id).first()
    if alert is None:
        return 0
    tenant = alert.tenant
    context = {
        "alert": alert, "tenant": tenant, "resolved": event == "alert.resolved",
        "portal_url": settings.PORTAL_BASE_URL,
    }
    subject_prefix = "Resolved: " if event == "alert.resolved" else ""
    sent = 0
    audiences = (
        (selectors.alert_recipients_for_tenant(tenant), "client"),
        (selectors.alert_staff_recipients(), "staff"),
    )
    for recipients, audience in audiences:
        if not recipients:
            continue
        body = render_to_string("alerts/email/alert.txt", {**context, "audience": audience})
        subject = f"[PBS Portal] {tenant.name}: {subject_prefix}{alert.title}"
        sent += EmailMessage(
            subject=subject.replace("\n", " ")[:250], body=body, to=recipients
        ).send()
    return sent


def tenant_webhook_set(
    *, tenant_id: int, url: str, enabled: bool = True, secret: str | None = None,
    regenerate_secret: bool = False, actor: Any = None,
) -> tuple[TenantAlertSettings, str | None]:
    """Configure a tenant's outgoing webhook. A secret is generated when none is kept (or on
    request); the new secret is returned once to show to the user and never again."""
    url = url.strip()
    problem = webhook_url_problem(url) if url else ""
    if problem:
        raise QuotaError(problem)
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        row, _ = TenantAlertSettings.objects.select_for_update().get_or_create(tenant=tenant)
        new_secret = None
        if secret:
            row.webhook_secret_enc = encrypt_secret(secret)
        elif regenerate_secret or not row.webhook_secret_enc:
            new_secret = secrets.token_urlsafe(32)
            row.webhook_secret_enc = encrypt_secret(new_secret)
        row.webhook_url = url
        row.webhook_enabled = enabled and bool(url)
        row.save()
        audit_record(
            action="alerts.webhook_set", actor=actor, tenant=tenant, target=tenant.slug,
            detail={
                "enabled": row.webhook_enabled,
                "url_host": _url_host(url),
                "secret_changed": bool(secret or new_secret),
            },
        )
    return row, new_secret


def tenant_alert_settings_set(
    *, tenant_id: int, backup_max_age_hours: int | None, actor: Any = None
) -> TenantAlertSettings:
    if backup_max_age_hours is not None and not 1 <= backup_max_age_hours <= 24 * 90:
        raise QuotaError("the backup age must be between 1 hour and 90 days")
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        row, _ = TenantAlertSettings.objects.get_or_create(tenant=tenant)
        row.backup_max_age_hours = backup_max_age_hours
        row.save(update_fields=["backup_max_age_hours", "updated_at"])
        audit_record(
            action="alerts.settings_set", actor=actor, tenant=tenant, target=tenant.slug,
            detail={"backup_max_age_hours": backup_max_age_hours},
        )
    return row


def _url_host(url: str) -> str:

    # Only the host is recorded: webhook URLs of ticketing tools often carry a token.
    return urlsplit(url).hostname or ""


def webhook_payload(*, alert: Alert, event: str, delivery_uuid: str, now: datetime) -> dict[str, Any]:
    tenant = alert.tenant
    return {
        "id": delivery_uuid,
        "event": event,
        "created_at": now.astimezone(UTC).isoformat(),
        "tenant": {"id": tenant.pk, "slug": tenant.slug, "name": tenant.name},
        "alert": {
            "id": alert.pk,
            "kind": alert.kind,
            "key": alert.key,
            "severity": alert.severity,
            "status": alert.status,
            "title": alert.title,
            "message": alert.message,
            "opened_at": alert.opened_at.astimezone(UTC).isoformat(),
            "resolved_at": alert.resolved_at.astimezone(UTC).isoformat() if alert.resolved_at else None,
            "detail": alert.detail,
        },
    }


def webhook_deliveries_create(*, alert: Alert, event: str, now: datetime | None = None) -> list[WebhookDelivery]:
    """One pending delivery per configured webhook (the tenant's and the global one)."""
    now = _now(now)
    targets: list[str] = []
    own = TenantAlertSettings.objects.filter(tenant_id=alert.tenant_id, webhook_enabled=True).exclude(
        webhook_url=""
    ).exists()
    if own:
        targets.append(WebhookDelivery.Target.TENANT)
    if settings.PORTAL_WEBHOOK_URL:
        targets.append(WebhookDelivery.Target.GLOBAL)
    deliveries = []
    for target in targets:
        delivery = WebhookDelivery(target=target, tenant_id=alert.tenant_id, alert=alert, event=event)
        payload = webhook_payload(alert=alert, event=event, delivery_uuid=str(delivery.uuid), now=now)
        delivery.body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        delivery.save()
        deliveries.append(delivery)
    return deliveries


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_signature_verify(
    *, secret: str, timestamp: str, body: bytes, signature: str, now: float | None = None,
    tolerance_seconds: int = 300,
) -> bool:
    """The receiver's check (documented in docs/alerts.md; used by the tests)."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, signature)


def _webhook_target(delivery: WebhookDelivery) -> tuple[str, str]:
    """(url, secret) for a delivery, read at send time so a rotated secret is used at once."""
    if delivery.target == WebhookDelivery.Target.GLOBAL:
        return settings.PORTAL_WEBHOOK_URL, settings.PORTAL_WEBHOOK_SECRET
    row = TenantAlertSettings.objects.filter(tenant_id=delivery.tenant_id).first()
    if row is None or not row.webhook_enabled or not row.webhook_url:
        return "", ""
    return row.webhook_url, decrypt_secret(row.webhook_secret_enc)


@dataclass(frozen=True)
class WebhookAttempt:
    status: str  # succeeded | retry | failed
    status_code: int | None = None
    error: str = ""


def _retryable_status(code: int) -> bool:
    return code >= 500 or code in {408, 425, 429}


def webhook_delivery_attempt(
    *, delivery_id: int, transport: Any = None, now: datetime | None = None, final: bool = False
) -> WebhookAttempt:
    """Send one delivery once and record the attempt.

    2xx = delivered. 5xx, 408, 425, 429 and connection errors may be retried; other 4xx mean
    the receiver refuses the message, so it fails at once. ``final`` marks the last allowed
    attempt: a retryable outcome then fails the delivery too.
    """
    import httpx

    now = _now(now)
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return WebhookAttempt(status=delivery.status if delivery else "failed", error="not pending")
    url, secret = _webhook_target(delivery)
    if not url or not secret:
        error = "webhook is not configured (URL or secret missing)"
        _delivery_record(delivery, now=now, status=WebhookDelivery.Status.FAILED, code=None, error=error)
        return WebhookAttempt(status="failed", error=error)

    body = delivery.body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pbs-portal-webhook/1",
        "X-Portal-Event": delivery.event,
        "X-Portal-Delivery": str(delivery.uuid),
        "X-Portal-Timestamp": timestamp,
        "X-Portal-Signature": webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }
    timeout = float(settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS)
    try:
        target = pinned_target(url)
    except AddressRefused as exc:
        if isinstance(exc, AddressUnresolved) and not final:
            _delivery_record(delivery, now=now, status=WebhookDelivery.Status.PENDING, code=None, error=str(exc))
            return WebhookAttempt(status="retry", error=str(exc))
        _delivery_record(delivery, now=now, status=WebhookDelivery.Status.FAILED, code=None, error=str(exc))
        return WebhookAttempt(status="failed", error=str(exc))
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    try:
        with (
            httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as http,
            http.stream(
                "POST", target.url, content=body, headers={**headers, "Host": target.host}, extensions=extensions
            ) as response,
        ):
            code = response.status_code  # the body is never read: nothing of it is shown or kept
    except httpx.HTTPError:
        # Neutral: neither the receiver's text nor internal detail goes back to the operator.
        outcome = WebhookAttempt(status="retry", error="the webhook endpoint could not be reached")
    else:
        if 200 <= code < 300:
            outcome = WebhookAttempt(status="succeeded", status_code=code)
        elif _retryable_status(code):
            outcome = WebhookAttempt(status="retry", status_code=code, error=f"the endpoint answered HTTP {code}")
        else:
            outcome = WebhookAttempt(
                status="failed", status_code=code, error=f"the endpoint answered HTTP {code} (not retried)"
            )
    if outcome.status == "retry" and final:
        outcome = WebhookAttempt(status="failed", status_code=outcome.status_code, error=outcome.error + "; gave up")
    row_status = {
        "succeeded": WebhookDelivery.Status.SUCCEEDED,
        "failed": WebhookDelivery.Status.FAILED,
        "retry": WebhookDelivery.Status.PENDING,
    }[outcome.status]
    _delivery_record(delivery, now=now, status=row_status, code=outcome.status_code, error=outcome.error)
    return outcome


def _delivery_record(
    delivery: WebhookDelivery, *, now: datetime, status: str, code: int | None, error: str
) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
        attempts=F("attempts") + 1, last_attempt_at=now, last_status_code=code,
        last_error=error[:1000], status=status,
        delivered_at=now if status == WebhookDelivery.Status.SUCCEEDED else None,
        next_attempt_at=None,
    )


def webhook_delivery_schedule(*, delivery_id: int, at: datetime) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).update(next_attempt_at=at)


def webhook_deliveries_requeue_stale(
    *, now: datetime | None = None, stale_after: timedelta = timedelta(hours=2)
) -> int:
    """Re-enqueue pending deliveries whose task was lost (no attempt for a long time)."""
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    now = _now(now)
    cutoff = now - stale_after
    stale = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lt=cutoff).exclude(
        next_attempt_at__gt=cutoff
    ).exclude(last_attempt_at__gt=cutoff)
    ids = list(stale.values_list("pk", flat=True)[:500])
    for delivery_id in ids:
        tasks.webhook_deliver.delay(delivery_id)
    return len(ids)
