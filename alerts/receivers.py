"""Signal receivers of the alerts app: lower apps tell what happened, alerts decides."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from alerts import services, tasks


def on_usage_sampled(sender: Any, tenant_id: int, sample_id: int, **kwargs: Any) -> None:
    """billing.signals.usage_sampled: evaluate the tenant's quota against the new sample."""
    transaction.on_commit(lambda: tasks.quota_evaluate.delay(tenant_id, sample_id))


def on_offsite_staleness_refreshed(sender: Any, memberships: list[Any], **kwargs: Any) -> None:
    """offsite.signals.offsite_staleness_refreshed: each copy's alert follows its stale flag."""
    for membership in memberships:
        services.offsite_stale_alert_sync(membership=membership)
