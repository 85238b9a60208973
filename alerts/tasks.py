"""Celery adapters: take ids, call one service."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from alerts import services
from core.transient import retry_if_transient

logger = logging.getLogger(__name__)

WEBHOOK_BACKOFF_BASE_SECONDS = 30
WEBHOOK_BACKOFF_MAX_SECONDS = 3600


@shared_task(acks_late=True, ignore_result=True)
def quota_evaluate(tenant_id: int, sample_id: int | None = None) -> None:
    """Evaluate a tenant's quota (after a metering sample, or after its limits changed)."""
    services.quota_evaluate_requested(tenant_id=tenant_id, sample_id=sample_id)


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=8)
def quota_enforcement_sync(self, tenant_id: int) -> None:
    """Make PBS write rights match the tenant's quota state (idempotent)."""
    with retry_if_transient(self, base=30, cap=1800):
        services.quota_enforcement_sync(tenant_id=tenant_id)


@shared_task(
    acks_late=True, ignore_result=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5
)
def alert_email_send(alert_id: int, event: str) -> None:
    services.alert_email_send(alert_id=alert_id, event=event)


def webhook_backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter on the upper half: 30 s, 60 s, 120 s ... up to 1 h."""
    ceiling = min(WEBHOOK_BACKOFF_BASE_SECONDS * 2**retries, WEBHOOK_BACKOFF_MAX_SECONDS)
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not crypto


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def webhook_deliver(self, delivery_id: int) -> None:
    """One delivery attempt; on a retryable failure, try again later with exponential backoff
    until PORTAL_WEBHOOK_MAX_ATTEMPTS attempts were made (the row counts them)."""
    max_attempts = settings.PORTAL_WEBHOOK_MAX_ATTEMPTS
    final = self.request.retries + 1 >= max_attempts
    outcome = services.webhook_delivery_attempt(delivery_id=delivery_id, final=final)
    if outcome.status != "retry":
        return
    countdown = webhook_backoff_seconds(self.request.retries)
    services.webhook_delivery_schedule(
        delivery_id=delivery_id, at=timezone.now() + timedelta(seconds=countdown)
    )
    raise self.retry(countdown=countdown)


@shared_task(acks_late=True, ignore_result=True)
def host_backup_health_check(host_id: int) -> None:
    services.host_backup_health_check(host_id=host_id)


@shared_task(ignore_result=True)
def alerts_hourly_check() -> None:
    """Hourly: one backup-health pass per PBS host (newest snapshot times, verification
    states), offsite staleness alerts from the offsite app's flags, and re-enqueue webhook
    deliveries whose task was lost."""
    for host_id in services.alerts_hourly_host_ids():
        host_backup_health_check.delay(host_id)
    services.offsite_staleness_alerts_sync()
    services.webhook_deliveries_requeue_stale()
