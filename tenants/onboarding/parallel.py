"""Runs of different tenants on one host, side by side: a per-host limit of concurrent runs.

A run's steps depend on each other (the token needs the user, its ACL the token), so one
run stays sequential; the runs of different tenants are independent. With N runs at a
time, bulk wall time is bounded by latency x requests / N instead of latency x requests.
PBS serialises its own config writes under a lock, so concurrent runs are safe for PBS; the
limit (PORTAL_ONBOARDING_HOST_CONCURRENCY, never above the host's max_connections) keeps
the portal polite to one host."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.db import connection, connections

from tenants.models import PbsHost
from tenants.onboarding.base import RunResult


class LockedState:
    """One PbsState shared by concurrent runs: one question or update at a time (a list
    is still read once; the others wait for it)."""

    def __init__(self, state: Any) -> None:
        self._state = state
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._state, name)
        if not callable(attr):
            return attr

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return locked


def host_concurrency(host: PbsHost) -> int:
    """How many runs may talk to ``host`` at once."""
    return max(1, min(settings.PORTAL_ONBOARDING_HOST_CONCURRENCY, host.max_connections))


def _threads_may_write() -> bool:
    """Other threads (other connections) can do this thread's work: not when the caller
    holds a transaction (they could not see its uncommitted rows), and not on an in-memory
    SQLite database (its shared cache fails a locked table at once instead of waiting)."""
    if connection.in_atomic_block:
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


def _wait_for(threads: list[threading.Thread]) -> None:
    """Wait until every started thread has ended, even if this thread is interrupted again
    meanwhile (a second shutdown signal): a run under way must never lose its client."""
    for thread in threads:
        while thread.ident is not None and thread.is_alive():
            try:
                thread.join()
            except BaseException:  # noqa: S112 (keep waiting; the first interruption is re-raised)
                continue


def execute_runs(run_ids: list[int], *, limit: int, execute: Callable[[int], RunResult]) -> dict[int, RunResult]:
    """``execute`` every run, at most ``limit`` at a time.

    The first run goes alone: it makes what all of them share (the parent namespace), so
    the others do not race to make it. Runs are executed in this thread when the limit is
    1 or the database cannot take writers from other threads (``_threads_may_write``).
    Each worker thread has its own database connection and closes it at the end.
    """
    results: dict[int, RunResult] = {}
    if not run_ids:
        return results
    if limit <= 1 or len(run_ids) <= 2 or not _threads_may_write():
        return {run_id: execute(run_id) for run_id in run_ids}
    results[run_ids[0]] = execute(run_ids[0])
    pending: Iterator[int] = iter(run_ids[1:])
    lock = threading.Lock()
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker() -> None:
        try:
            while True:
                with lock:
                    run_id = next(pending, None)
                    if run_id is None or errors or stop.is_set():
                        return
                try:
                    result = execute(run_id)
                except BaseException as exc:  # re-raised in the caller's thread below
                    with lock:
                        errors.append(exc)
                    return
                with lock:
                    results[run_id] = result
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=worker, name=f"onboarding-{i}", daemon=True)
        for i in range(min(limit, len(run_ids) - 1))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        # This thread is told to stop (a worker's warm shutdown raises here): no new run
        # starts, the runs under way finish (their client and connections stay open until
        # then), and the runs not started stay queued for the next delivery or the recovery.
        stop.set()
        _wait_for(threads)
        raise
    if errors:
        raise errors[0]
    return results
