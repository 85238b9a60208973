"""Celery adapters: take ids or labels, call one service.

Beat runs ``metering_collect_all`` daily (PORTAL_METERING_HOUR) and
``billing_close_previous_month`` on the 1st. Metering fans out as one
``metering_collect_host`` task per host chunk, so more workers on more machines
shorten a run. All of them are idempotent: a redelivered chunk finds itself done.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError, transaction
from django.utils import timezone

from billing import pricing, services
from billing.models import MeteringHostResult, MeteringRun

logger = logging.getLogger(__name__)


@shared_task(name="billing.tasks.metering_collect_all", acks_late=True, ignore_result=True)
def metering_collect_all(day: str | None = None, trigger: str = MeteringRun.Trigger.SCHEDULE) -> int:
    """Start a run for ``day`` (ISO date, default today) and enqueue one task per host chunk."""
    import datetime as dt

    run = services.metering_run_start(day=dt.date.fromisoformat(day) if day else timezone.localdate(), trigger=trigger)
    chunks = list(
        MeteringHostResult.objects.filter(run=run, status=MeteringHostResult.Status.PENDING).values_list(
            "host_id", "tenant_ids"
        )
    )

    def enqueue() -> None:
        for host_id, tenant_ids in chunks:
            metering_collect_host.delay(run.pk, host_id, tenant_ids)

    transaction.on_commit(enqueue)
    return run.pk


@shared_task(
    name="billing.tasks.metering_collect_host",
    acks_late=True,
    ignore_result=True,
    # PBS failures are retried and turned into gaps inside the service; only a database
    # hiccup while storing is retried here (the chunk stays claimable until it is stored).
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    retry_jitter=True,
    max_retries=3,
)
def metering_collect_host(run_id: int, host_id: int, tenant_ids: list[int]) -> None:
    """Measure one chunk of one host's tenants (PBS retries and gaps are handled inside)."""
    if not MeteringRun.objects.filter(pk=run_id).exists():
        return  # the run was deleted: nothing to do
    services.metering_collect_chunk(run_id=run_id, host_id=host_id, tenant_ids=tenant_ids)


@shared_task(name="billing.tasks.billing_close_previous_month", acks_late=True, ignore_result=True)
def billing_close_previous_month() -> str:
    period = pricing.previous_month(timezone.localdate())
    result = services.billing_period_close(period=period)
    logger.info("closed %s: %s invoices (already closed: %s)", period, result.created, result.already_closed)
    return period


@shared_task(name="billing.tasks.billing_close_period", acks_late=True, ignore_result=True)
def billing_close_period(period: str, actor_id: int | None = None) -> None:
    from accounts.models import User

    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    services.billing_period_close(period=period, actor=actor)
