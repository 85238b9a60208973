"""Celery adapters for chunk-exact usage.

Beat runs ``attribution_collect_all`` daily, an hour before metering, which enqueues one
``attribution_collect_datastore`` per datastore of an enabled host. Both are idempotent: a
finished run of the day is returned as it is, an unfinished one resumes where it stopped
(every snapshot read is stored at once). Only transient failures (core.transient: PBS
unreachable, a 5xx, a database hiccup) are retried.
"""

from __future__ import annotations

import datetime as dt

from celery import Task, shared_task
from django.db import transaction

from attribution.services.runs import attribution_collect, attribution_targets
from core.transient import retry_if_transient


@shared_task(
    name="attribution.tasks.attribution_collect_all", bind=True, acks_late=True, ignore_result=True, max_retries=3
)
def attribution_collect_all(self: Task, day: str | None = None) -> int:
    """Enqueue one run per datastore for ``day`` (ISO date, default today); returns how many."""
    with retry_if_transient(self, base=30, cap=300):
        targets = attribution_targets()

    def enqueue() -> None:
        for host_id, store in targets:
            attribution_collect_datastore.delay(host_id, store, day)

    transaction.on_commit(enqueue)
    return len(targets)


@shared_task(
    name="attribution.tasks.attribution_collect_datastore", bind=True, acks_late=True, ignore_result=True, max_retries=5
)
def attribution_collect_datastore(self: Task, host_id: int, datastore: str, day: str | None = None) -> None:
    """Run (or resume) the day's attribution of one datastore (a host deleted meanwhile: nothing to do)."""
    with retry_if_transient(self, base=60, cap=900):
        attribution_collect(host_id=host_id, datastore=datastore, day=dt.date.fromisoformat(day) if day else None)
