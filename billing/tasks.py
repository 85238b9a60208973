"""Celery adapters: take ids or labels, call one service.

Beat runs ``metering_collect_all`` daily (PORTAL_METERING_HOUR) and
``billing_close_previous_month`` on the 1st. Metering fans out as one
``metering_collect_host`` task per host chunk, so more workers on more machines
shorten a run. All of them are idempotent: a redelivered chunk finds itself done, a month
closed twice is closed once (the close is one transaction that locks the period row).
Only transient failures (core.transient: a busy or unreachable database, PBS unreachable)
are retried; anything else, a month not over for instance, fails the task at once.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from accounts.selectors import user_by_id
from billing import pricing
from billing.models import MeteringRun
from billing.selectors.metering import metering_run_exists, metering_run_pending_chunks
from billing.services.close import billing_period_close
from billing.services.metering import metering_collect_chunk, metering_run_start
from core.transient import retry_if_transient

logger = logging.getLogger(__name__)


@shared_task(name="billing.tasks.metering_collect_all", bind=True, acks_late=True, ignore_result=True, max_retries=3)
def metering_collect_all(self: Task, day: str | None = None, trigger: str = MeteringRun.Trigger.SCHEDULE) -> int:
    """Start a run for ``day`` (ISO date, default today) and enqueue one task per host chunk."""
    with retry_if_transient(self, base=30, cap=300):
        run = metering_run_start(day=dt.date.fromisoformat(day) if day else timezone.localdate(), trigger=trigger)
        chunks = metering_run_pending_chunks(run=run)

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
    if not metering_run_exists(run_id=run_id):
        return  # the run was deleted: nothing to do
    with retry_if_transient(self, base=5, cap=60):
        metering_collect_chunk(run_id=run_id, host_id=host_id, tenant_ids=tenant_ids)


# The close is retried as a whole: a failure rolls the one transaction back, and a close that
# did commit finds the period closed on the next attempt and changes nothing.
@shared_task(
    name="billing.tasks.billing_close_previous_month", bind=True, acks_late=True, ignore_result=True, max_retries=5
)
def billing_close_previous_month(self: Task) -> str:
    period = pricing.previous_month(timezone.localdate())
    with retry_if_transient(self, base=60, cap=900):
        result = billing_period_close(period=period)
    logger.info("closed %s: %s invoices (already closed: %s)", period, result.created, result.already_closed)
    return period


@shared_task(name="billing.tasks.billing_close_period", bind=True, acks_late=True, ignore_result=True, max_retries=5)
def billing_close_period(self: Task, period: str, actor_id: int | None = None) -> None:
    with retry_if_transient(self, base=60, cap=900):
        billing_period_close(period=period, actor=user_by_id(actor_id))
