"""Signal receivers: hand work to Celery after the sender's transaction commits."""

from __future__ import annotations

from typing import Any

from django.db import transaction


def on_usage_sampled(sender: Any, tenant_id: int, sample_id: int, **kwargs: Any) -> None:
    """billing.signals.usage_sampled: evaluate the tenant's quota against the new sample."""
    from alerts import tasks

    transaction.on_commit(lambda: tasks.quota_evaluate.delay(tenant_id, sample_id))
