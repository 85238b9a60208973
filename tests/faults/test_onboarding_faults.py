"""Onboarding keeps its promise when things break: every run finishes, nothing is doubled,
nothing is left behind.

The real stack: tenants are onboarded in bulk by the session's Celery worker (a separate
process, re-tuned by ``fault_worker``) over HTTPS to a simulated PBS with a pinned
certificate; Redis and PostgreSQL are the session's private servers. Each scenario breaks
one thing (PBS answers, the worker, Redis, the PBS host, PostgreSQL) and ends with the
consistency check (tests/faults/consistency.py).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import close_old_connections, connection

from pbssim import FaultConfig
from tenants import services
from tenants.models import OnboardingRun, OnboardingStep, PbsHost, Tenant
from tests.faults.conftest import assert_all_succeeded, run_states, wait_for_runs
from tests.faults.consistency import assert_consistent

pytestmark = [pytest.mark.slow, pytest.mark.celery, pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture
def https_host(pbs_https: Any, pbs_host: Callable[..., PbsHost], faults_on: Any) -> PbsHost:
    """pbs_sim over HTTPS, registered with its pinned certificate and health-checked."""
    host = services.pbshost_check(host_id=pbs_host(pbs_https, name="pbs-faults").pk)
    assert host.reachable, host.last_error
    assert host.fingerprint_ok
    return host


def _create(host: PbsHost, n: int, prefix: str) -> list[Tenant]:
    """``n`` tenants spread over the host's datastores (retention varies, so it is checked)."""
    stores = list(host.datastores.order_by("name"))
    return [
        services.tenant_create(
            slug=f"{prefix}{i:03d}",
            name=f"{prefix.title()} {i}",
            datastore=stores[i % len(stores)],
            retention=services.Retention(keep_daily=7 + i % 5, keep_weekly=4, keep_monthly=None),
        )
        for i in range(n)
    ]


def _onboard(tenants: list[Tenant]) -> list[int]:
    return [run.pk for run in services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants])]


def _steps_done(run_ids: list[int]) -> int:
    close_old_connections()
    return OnboardingStep.objects.filter(run_id__in=run_ids, state=OnboardingStep.State.DONE).count()


def _wait_for_progress(run_ids: list[int], *, more_than: int, timeout: float = 60.0) -> int:
    """Wait until more than ``more_than`` steps are done; returns the count."""
    from tenants.tasks import onboarding_runs_recover

    deadline = time.monotonic() + timeout
    next_recover = time.monotonic() + 2.0
    while (done := _steps_done(run_ids)) <= more_than:
        if time.monotonic() > deadline:
            pytest.fail(f"no onboarding progress in {timeout:.0f} s ({done} steps done): {dict(run_states(run_ids))}")
        if time.monotonic() >= next_recover:  # beat's job in production
            onboarding_runs_recover.delay()
            next_recover = time.monotonic() + 2.0
        time.sleep(0.1)
    return done


def _assert_active_and_consistent(host: PbsHost, sim: Any, runs: list[OnboardingRun], n: int) -> None:
    assert_all_succeeded(runs)
    assert len(runs) == n
    assert Tenant.objects.filter(host=host, status=Tenant.Status.ACTIVE).count() == n
    assert not OnboardingRun.objects.filter(status__in=("queued", "running")).exists()
    assert_consistent((host, sim))


def test_200_tenants_onboard_in_bulk_through_20_percent_failing_pbs_requests(pbs_sim: Any, https_host: PbsHost) -> None:
    tenants = _create(https_host, 200, "bulk")
    # 20% of PBS requests fail: 10% 5xx, 5% handled but the answer never comes (the
    # connection is closed after a short hold), 5% connections dropped before handling.
    pbs_sim.faults = FaultConfig(error_rate=0.10, timeout_rate=0.05, drop_rate=0.05, timeout_hold_s=0.3, seed=2026)
    pbs_sim.request_log.clear()

    run_ids = _onboard(tenants)
    runs = wait_for_runs(run_ids, timeout=480)  # ~2 min alone; generous for a busy CI box

    pbs_sim.faults = FaultConfig()
    assert sum(r.attempts for r in runs) > len(runs), "faults made runs retry"
    _assert_active_and_consistent(https_host, pbs_sim, runs, 200)


def test_the_worker_killed_with_sigkill_ten_times_mid_onboarding(
    pbs_sim: Any, https_host: PbsHost, faults_on: Any
) -> None:
    tenants = _create(https_host, 60, "kill")
    # A slow PBS (25 ms a request) so that onboarding lasts long enough for ten kills.
    pbs_sim.faults = FaultConfig(latency_ms=25)
    run_ids = _onboard(tenants)
    total_steps = len(run_ids) * OnboardingRun.objects.get(pk=run_ids[0]).steps.count()

    done = 0
    for _ in range(10):
        done = _wait_for_progress(run_ids, more_than=done + 5)
        assert done < total_steps, "onboarding finished before all kills: make PBS slower"
        faults_on.kill(signal.SIGKILL)  # the whole process group, as a crashed machine
        faults_on.start().wait_ready()
    assert faults_on.starts >= 10
    assert run_states(run_ids).get("succeeded", 0) < len(run_ids), "the last kill landed mid-onboarding"

    runs = wait_for_runs(run_ids, timeout=300, recover_every=2.0)

    pbs_sim.faults = FaultConfig()
    _assert_active_and_consistent(https_host, pbs_sim, runs, 60)


def test_redis_restarted_during_onboarding(
    pbs_sim: Any, https_host: PbsHost, redis_server: Any, faults_on: Any
) -> None:
    tenants = _create(https_host, 40, "redis")
    pbs_sim.faults = FaultConfig(latency_ms=25)
    run_ids = _onboard(tenants)
    _wait_for_progress(run_ids, more_than=20)

    # No persistence: the broker forgets every queued and unacknowledged task. Celery's main
    # process may also exit on the lost connection (a kombu bug: "Unrecoverable error"); in
    # production its supervisor starts it again (deploy/systemd, docker-compose), here
    # faults_on.supervise does, on every poll.
    redis_server.restart()
    runs = wait_for_runs(run_ids, timeout=300, recover_every=2.0, on_tick=faults_on.supervise)

    pbs_sim.faults = FaultConfig()
    _assert_active_and_consistent(https_host, pbs_sim, runs, 40)


def test_a_pbs_host_down_for_a_while_and_back(pbs_sim: Any, pbs_https: Any, https_host: PbsHost) -> None:
    tenants = _create(https_host, 40, "down")
    pbs_sim.faults = FaultConfig(latency_ms=25)
    run_ids = _onboard(tenants)
    _wait_for_progress(run_ids, more_than=20)

    pbs_https.pause()  # connection refused, open connections cut
    down_until = time.monotonic() + 20
    while time.monotonic() < down_until:
        assert _steps_done(run_ids) < len(run_ids) * 7
        time.sleep(1)
    still_live = run_states(run_ids)
    pbs_https.resume()  # same port, same certificate

    runs = wait_for_runs(run_ids, timeout=300, recover_every=2.0)

    assert still_live.get("failed", 0) == 0, f"runs gave up while the host was down: {dict(still_live)}"
    pbs_sim.faults = FaultConfig()
    _assert_active_and_consistent(https_host, pbs_sim, runs, 40)


def test_postgresql_restarted_during_onboarding(pbs_sim: Any, https_host: PbsHost, postgres_server: Any) -> None:
    tenants = _create(https_host, 40, "pg")
    pbs_sim.faults = FaultConfig(latency_ms=25)
    run_ids = _onboard(tenants)
    _wait_for_progress(run_ids, more_than=20)

    postgres_server.restart(mode="fast")  # every connection is cut
    connection.close()  # ours too: Django opens a new one
    runs = wait_for_runs(run_ids, timeout=300, recover_every=2.0)

    pbs_sim.faults = FaultConfig()
    _assert_active_and_consistent(https_host, pbs_sim, runs, 40)
