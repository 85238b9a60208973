"""Fault scenarios: the shared Celery worker, re-tuned for faults, and helpers to wait for runs.

The session's Celery worker (tests/conftest.py) reads its settings from the environment it
was started with. These scenarios need short retry back-offs, a short lease and stale
limit (so a killed worker's runs are picked up within seconds, not minutes) and short PBS
timeouts: ``fault_worker`` restarts the worker with those settings for this package and
gives it back with the original environment afterwards.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import close_old_connections

from tenants.models import OnboardingRun
from tests.services import CeleryWorker

# Values for the worker (environment) and the test process (settings). Retries: back-off
# base 50 ms (so ~10 rounds of retries take seconds), enough attempts for 20% faults. Lease
# 15 s: above the longest PBS call (3 s timeout x 3 attempts in the client, plus back-off);
# a run nobody holds for 8 s counts as lost.
FAULT_SETTINGS: dict[str, Any] = {
    "PORTAL_ONBOARDING_MAX_RETRIES": 25,
    "PORTAL_ONBOARDING_RETRY_BASE_SECONDS": 0.05,
    "PORTAL_ONBOARDING_LEASE_SECONDS": 15,
    "PORTAL_ONBOARDING_STALE_SECONDS": 8,
    "PORTAL_PBS_TIMEOUT_SECONDS": 3.0,
    "PORTAL_METERING_ATTEMPTS": 2,
    "PORTAL_METERING_RETRY_DELAY_SECONDS": 0.5,
}


@pytest.fixture(scope="package")
def fault_worker(celery_worker_process: CeleryWorker) -> Iterator[CeleryWorker]:
    """The session's worker, restarted with FAULT_SETTINGS; restored after the package."""
    original = dict(celery_worker_process.env)
    celery_worker_process.env.update({name: str(value) for name, value in FAULT_SETTINGS.items()})
    celery_worker_process.restart()
    yield celery_worker_process
    celery_worker_process.env.clear()
    celery_worker_process.env.update(original)
    celery_worker_process.restart()


@pytest.fixture
def faults_on(fault_worker: CeleryWorker, settings: Any) -> CeleryWorker:
    """The tuned worker, alive, and the same settings in the test process."""
    for name, value in FAULT_SETTINGS.items():
        setattr(settings, name, value)
    # An earlier scenario may have left it dead or going down after a crash.
    return fault_worker.supervise()


def run_states(run_ids: list[int]) -> Counter[str]:
    return Counter(OnboardingRun.objects.filter(pk__in=run_ids).values_list("status", flat=True))


def wait_for_runs(
    run_ids: list[int],
    *,
    timeout: float,
    recover_every: float | None = None,
    on_tick: Callable[[], None] | None = None,
) -> list[OnboardingRun]:
    """Poll the shared database until every run has finished (succeeded or failed).

    With ``recover_every`` the stale-run recovery is sent to the worker that often, as
    beat would do every minute in production (no beat process runs in the tests).
    """
    from tenants.tasks import onboarding_runs_recover

    deadline = time.monotonic() + timeout
    next_recover = time.monotonic() + (recover_every or 0)
    while True:
        close_old_connections()
        states = run_states(run_ids)
        if sum(states.values()) == len(run_ids) and set(states) <= {"succeeded", "failed"}:
            return list(OnboardingRun.objects.filter(pk__in=run_ids))
        if time.monotonic() > deadline:
            pytest.fail(f"runs did not finish in {timeout:.0f} s: {dict(states)}")
        if recover_every is not None and time.monotonic() >= next_recover:
            onboarding_runs_recover.delay()
            next_recover = time.monotonic() + recover_every
        if on_tick is not None:
            on_tick()
        time.sleep(0.25)


def assert_all_succeeded(runs: list[OnboardingRun]) -> None:
    failed = [(r.tenant_id, r.error, r.error_hint) for r in runs if r.status != OnboardingRun.Status.SUCCEEDED]
    assert not failed, f"{len(failed)} run(s) failed, e.g. {failed[:5]}"
