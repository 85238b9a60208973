"""Writes for quotas, alerts and webhooks.

Every state change is one transaction with its audit row; mail, webhooks and PBS changes run
after commit (Celery), so a rolled-back evaluation never announces or enforces anything."""

from __future__ import annotations

from alerts.services.base import (
    PRIV_BACKUP,
    PRIV_READ,
    QUOTA_ALERT_KINDS,
    QUOTA_KIND_LEVEL,
    VERIFY_CHECK_INTERVAL,
    QuotaEnforcementError,
    QuotaError,
)
from alerts.services.delivery import (
    WebhookAttempt,
    alert_email_send,
    tenant_alert_settings_set,
    tenant_webhook_set,
    webhook_deliveries_create,
    webhook_deliveries_requeue_stale,
    webhook_delivery_attempt,
    webhook_delivery_schedule,
    webhook_payload,
    webhook_signature,
    webhook_signature_verify,
)
from alerts.services.enforcement import (
    QUOTA_BLOCK_REASON_PREFIX,
    quota_enforcement_sync,
    tenant_backup_tokenids,
    tenant_privileges_problems,
    tenant_privileges_read,
)
from alerts.services.health import (
    alerts_hourly_host_ids,
    backup_age_evaluate,
    backup_age_from_metering,
    host_backup_health_check,
    tenant_backup_health_check,
    verification_failures_evaluate,
)
from alerts.services.lifecycle import (
    alert_raise,
    alert_resolve,
    alert_resolve_all_except,
)
from alerts.services.offsite import (
    offsite_key,
    offsite_stale_alert_sync,
    offsite_staleness_alerts_sync,
)
from alerts.services.quota import (
    quota_evaluate_requested,
    quota_evaluate_tenant,
    quota_exempt_set,
    quota_grace_extend,
    tenant_usage_sampled,
)
from alerts.services.quota_policy import (
    plan_quota_set,
    tenant_quota_clear,
    tenant_quota_set,
)

__all__ = [
    "PRIV_BACKUP",
    "PRIV_READ",
    "QUOTA_ALERT_KINDS",
    "QUOTA_BLOCK_REASON_PREFIX",
    "QUOTA_KIND_LEVEL",
    "VERIFY_CHECK_INTERVAL",
    "QuotaEnforcementError",
    "QuotaError",
    "WebhookAttempt",
    "alert_email_send",
    "alert_raise",
    "alert_resolve",
    "alert_resolve_all_except",
    "alerts_hourly_host_ids",
    "backup_age_evaluate",
    "backup_age_from_metering",
    "host_backup_health_check",
    "offsite_key",
    "offsite_stale_alert_sync",
    "offsite_staleness_alerts_sync",
    "plan_quota_set",
    "quota_enforcement_sync",
    "quota_evaluate_requested",
    "quota_evaluate_tenant",
    "quota_exempt_set",
    "quota_grace_extend",
    "tenant_alert_settings_set",
    "tenant_backup_health_check",
    "tenant_backup_tokenids",
    "tenant_privileges_problems",
    "tenant_privileges_read",
    "tenant_quota_clear",
    "tenant_quota_set",
    "tenant_usage_sampled",
    "tenant_webhook_set",
    "verification_failures_evaluate",
    "webhook_deliveries_create",
    "webhook_deliveries_requeue_stale",
    "webhook_delivery_attempt",
    "webhook_delivery_schedule",
    "webhook_payload",
    "webhook_signature",
    "webhook_signature_verify",
]
