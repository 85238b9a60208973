"""Celery adapters: take ids or labels, call one service.

Beat runs ``metering_collect_all`` daily (PORTAL_METERING_HOUR) and
``billing_close_previous_month`` on the 1st. Metering fans out as one
``metering_collect_host`` task per host chunk, so more workers on more machines
shorten a run. All of them are idempotent: a redelivered chunk finds itself done.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from accounts.selectors import user_by_id
from billing import pricing, selectors, services
from billing.models import MeteringRun
from core.transient import retry_if_transient

logger = logging.getLogger(__name__)


@shared_task(name="billing.tasks.metering_collect_all", acks_late=True, ignore_result=True)
def metering_collect_all(day: str | None = None, trigger: str = MeteringRun.Trigger.SCHEDULE) -> int:
    """Start a run for ``day`` (ISO date, default today) and enqueue one task per host chunk."""
    run = services.metering_run_start(day=dt.date.fromisoformat(day) if day else timezone.localdate(), trigger=trigger)
    chunks = selectors.metering_run_pending_chunks(run=run)

    def enqueue() -> None:
        for host_id, tenant_ids in chunks:
            metering_collect_host.delay(run.pk, host_id, tenant_ids)

    transaction.on_commit(enqueue)
    return run.pk


# PBS failures are retried and turned into gaps inside the service; only a transient failure
# while storing (a database hiccup) is retried here: the chunk stays claimable until stored.
@shared_task(name="billing.tasks.metering_collect_host", bind=True, acks_late=True, ignore_result=True, max_retries=3)
def metering_collect_host(self: Task, run_id: int, host_id: int, tenant_ids: list[int]) -> None:
    """Measure one chunk of one host's tenants (PBS retries and gaps are handled inside)."""
    if not selectors.metering_run_exists(run_id=run_id):
        return  # the run was deleted: nothing to do
    with retry_if_transient(self, base=5, cap=60):
        services.metering_collect_chunk(run_id=run_id, host_id=host_id, tenant_ids=tenant_ids)


@shared_task(name="billing.tasks.billing_close_previous_month", acks_late=True, ignore_result=True)
def billing_close_previous_month() -> str:
    period = pricing.previous_month(timezone.localdate())
    result = services.billing_period_close(period=period)
    logger.info("closed %s: %s invoices (already closed: %s)", period, result.created, result.already_closed)
    return period


@shared_task(name="billing.tasks.billing_close_period", acks_late=True, ignore_result=True)
def billing_close_period(period: str, actor_id: int | None = None) -> None:
    services.billing_period_close(period=period, actor=user_by_id(actor_id))
