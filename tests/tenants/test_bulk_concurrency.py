"""Runs of one batch side by side on a host: a per-host limit, the same requests, no duplicate."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tenants import services
from tenants.models import OnboardingRun, Tenant
from tenants.onboarding import RunResult, batch_execute
from tenants.onboarding.parallel import execute_runs, host_concurrency
from tests.tenants.test_bulk import ONE_TENANT_REQUESTS, _calls, _create_many, assert_pbs_matches_portal


class InFlight:
    """Wraps the simulator: each request waits 20 ms outside its lock (a latency), and
    the most requests in flight at once is recorded."""

    def __init__(self, sim: Any) -> None:
        self.sim, self.original = sim, sim.handle
        self.now = self.peak = 0
        self.lock = threading.Lock()
        sim.handle = self.handle

    def handle(self, *args: Any) -> Any:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(0.02)
            return self.original(*args)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.postgres  # several connections writing at once
@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_its_tenants_side_by_side_within_the_host_limit(
    pbs_sim: Any, sim_host: Any, settings: Any
) -> None:
    settings.PORTAL_ONBOARDING_HOST_CONCURRENCY = 3
    tenants = _create_many(sim_host, 13, prefix="par")
    runs = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants], enqueue=False)
    pbs_sim.request_log.clear()
    flight = InFlight(pbs_sim)

    results = batch_execute(run_ids=[r.pk for r in runs])

    assert set(results.values()) == {RunResult.SUCCEEDED}
    assert flight.peak == 3, "never more than the host limit, and really side by side"
    # The same requests as one after the other: nothing is read twice or written twice.
    expected = {key: n * 13 for key, n in ONE_TENANT_REQUESTS.items()}
    expected[("POST", "/admin/datastore/store1/namespace")] += 2
    assert _calls(pbs_sim) == expected
    assert Tenant.objects.filter(status=Tenant.Status.ACTIVE).count() == 13
    assert not OnboardingRun.objects.filter(claimed_until__isnull=False).exists()
    assert_pbs_matches_portal(pbs_sim)


@pytest.mark.django_db
def test_the_host_limit_is_the_setting_capped_by_the_hosts_connections(sim_host: Any, settings: Any) -> None:
    settings.PORTAL_ONBOARDING_HOST_CONCURRENCY = 6
    sim_host.max_connections = 4
    assert host_concurrency(sim_host) == 4
    settings.PORTAL_ONBOARDING_HOST_CONCURRENCY = 0
    assert host_concurrency(sim_host) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_runs_go_one_by_one_inside_a_transaction_and_the_first_goes_alone() -> None:
    from django.db import transaction

    order: list[tuple[int, str]] = []

    def execute(run_id: int) -> RunResult:
        order.append((run_id, threading.current_thread().name))
        return RunResult.SUCCEEDED

    with transaction.atomic():  # other threads could not see uncommitted rows
        assert execute_runs([1, 2, 3, 4], limit=4, execute=execute) == dict.fromkeys([1, 2, 3, 4], RunResult.SUCCEEDED)
    assert {name for _id, name in order} == {threading.current_thread().name}

    order.clear()
    execute_runs([1, 2, 3, 4], limit=4, execute=execute)
    assert order[0] == (1, threading.current_thread().name)
    assert all(name.startswith("onboarding-") for _id, name in order[1:])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_error_in_a_worker_thread_reaches_the_caller() -> None:
    def execute(run_id: int) -> RunResult:
        if run_id == 3:
            raise RuntimeError("boom")
        return RunResult.SUCCEEDED

    with pytest.raises(RuntimeError, match="boom"):
        execute_runs([1, 2, 3, 4], limit=2, execute=execute)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_stop_in_the_calling_thread_lets_runs_under_way_finish_and_starts_no_more() -> None:
    """A worker's shutdown raises in the thread that waits for the others (once or more):
    the runs under way finish before it leaves (their client is closed after it), and no
    new run starts."""
    import os
    import signal

    main = threading.get_ident()
    started: list[int] = []
    finished: list[int] = []

    def stop_signal(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    def execute(run_id: int) -> RunResult:
        started.append(run_id)
        if run_id == 3:
            signal.pthread_kill(main, signal.SIGUSR1)
            time.sleep(0.05)
            signal.pthread_kill(main, signal.SIGUSR1)  # a second stop while it waits
        time.sleep(0.2)
        finished.append(run_id)
        return RunResult.SUCCEEDED

    previous = signal.signal(signal.SIGUSR1, stop_signal)
    try:
        with pytest.raises(SystemExit):
            execute_runs(list(range(1, 21)), limit=3, execute=execute)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert sorted(finished) == sorted(started), "every run under way finished before the caller left"
    assert len(started) < 20
    assert os.getpid()  # still here: nothing killed the process
