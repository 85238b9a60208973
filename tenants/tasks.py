"""Celery tasks: small adapters that take ids and call one service.

Retries follow one rule, ``core.transient``: TLS failures and a changed certificate are never
retried. A run that hit a transient PBS error (connection trouble, 5xx) is retried with
exponential backoff and full jitter, up to PORTAL_ONBOARDING_MAX_RETRIES times; the last
attempt turns a transient error into a failed run with a hint. Tasks are idempotent (steps
check before they create, runs are claimed with a lease), so ``acks_late`` is safe: a task
redelivered after a worker crash resumes the run where it stopped.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from core.transient import retry_if_transient
from tenants import selectors, services
from tenants.onboarding import RunResult, batch_execute, lease, run_execute

log = logging.getLogger(__name__)


def retry_countdown(retries: int) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**retries)]."""
    base = settings.PORTAL_ONBOARDING_RETRY_BASE_SECONDS
    ceiling = min(300.0, base * (2**retries))
    return random.uniform(0, ceiling)  # noqa: S311 (jitter, not security)


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def onboarding_run_execute(self, run_id: int) -> str:
    """Execute (or resume) one onboarding, repair or offboarding run."""
    final = self.request.retries >= settings.PORTAL_ONBOARDING_MAX_RETRIES
    result = run_execute(run_id=run_id, final_attempt=final)
    if result is RunResult.RETRY:
        countdown = retry_countdown(self.request.retries)
        services.onboarding_runs_expect(run_ids=[run_id], in_seconds=countdown)
        raise self.retry(countdown=countdown)
    # Another worker holds the lease (e.g. this is a redelivery); look again once the
    # lease would have expired, in case that worker died.
    if result is RunResult.BUSY and self.request.retries < settings.PORTAL_ONBOARDING_MAX_RETRIES:
        raise self.retry(countdown=lease().total_seconds() + 5)
    return result.value


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def onboarding_batch_execute(self, run_ids: list[int]) -> dict[str, int]:
    """Execute many runs with one snapshot per host; retries only the runs that need it."""
    final = self.request.retries >= settings.PORTAL_ONBOARDING_MAX_RETRIES
    results = batch_execute(run_ids=run_ids, final_attempt=final)
    again = [run_id for run_id, result in results.items() if result in (RunResult.RETRY, RunResult.BUSY)]
    if again and not final:
        countdown = retry_countdown(self.request.retries)
        services.onboarding_runs_expect(run_ids=again, in_seconds=countdown)
        raise self.retry(args=[again], countdown=countdown)
    counts: dict[str, int] = {}
    for result in results.values():
        counts[result.value] = counts.get(result.value, 0) + 1
    return counts


@shared_task(bind=True, ignore_result=True)
def onboarding_runs_recover(self) -> int:
    """Beat (every minute): enqueue again the live runs whose task was lost."""
    with retry_if_transient(self):
        return len(services.onboarding_runs_recover())


@shared_task(bind=True, ignore_result=True)
def hosts_health_check(self) -> int:
    """Beat: fan out one health check per host."""
    with retry_if_transient(self):
        ids = selectors.host_ids()
    for host_id in ids:
        host_health_check.delay(host_id)
    return len(ids)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def host_health_check(self, host_id: int) -> None:
    with retry_if_transient(self):
        if selectors.host_exists(host_id):
            services.pbshost_check(host_id=host_id)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def host_drift_check(self, host_id: int) -> None:
    with retry_if_transient(self):
        if selectors.host_exists(host_id):
            services.pbshost_drift_check(host_id=host_id)


@shared_task(bind=True, ignore_result=True)
def hosts_drift_check(self) -> int:
    """Beat (daily): a drift check per enabled host."""
    with retry_if_transient(self):
        ids = selectors.host_ids(enabled_only=True)
    for host_id in ids:
        host_drift_check.delay(host_id)
    return len(ids)


@shared_task(bind=True, ignore_result=True)
def token_secrets_expire(self) -> int:
    """Beat (daily): destroy token secrets nobody revealed within PORTAL_SECRET_REVEAL_DAYS."""
    with retry_if_transient(self):
        return services.token_secrets_expire()
