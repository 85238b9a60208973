"""One rule for what heals by itself (core.transient), used by every task: TLS failures and a
changed certificate are never retried, connection trouble, 5xx and a busy database are.
The onboarding runs follow it too (a run against a host whose certificate changed fails at
once with a hint instead of retrying for hours)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import OperationalError

from core.transient import TransientError, is_transient, retry_if_transient
from pbsclient.errors import (
    FingerprintMismatch,
    NotFound,
    PbsConnectionError,
    PbsTimeout,
    PbsTlsError,
    PermissionDenied,
    ServerError,
)
from tenants import tasks
from tenants.models import OnboardingRun
from tenants.onboarding import engine
from tenants.services.hosts import pbshost_check
from tenants.services.runs import tenant_onboard
from tenants.services.tenants import tenant_create

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "exc",
    [
        PbsConnectionError("refused", request_sent=False),
        PbsTimeout("read timeout"),
        ServerError("internal error", status=500),
        OperationalError("database is locked"),
        TransientError("remote busy"),
    ],
)
def test_what_heals_by_itself_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        PbsTlsError("certificate verify failed"),
        FingerprintMismatch(expected="aa" * 32, presented="bb" * 32),
        NotFound("no such user", status=404),
        PermissionDenied("permission check failed", status=403),
        ValueError("a bug"),
    ],
)
def test_what_never_heals_is_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


class _Retry(Exception):
    pass


def _task(retries: int = 0) -> SimpleNamespace:
    calls: list[dict] = []

    def retry(**kwargs: object) -> _Retry:
        calls.append(kwargs)
        return _Retry()

    return SimpleNamespace(request=SimpleNamespace(retries=retries), retry=retry, calls=calls)


def test_a_task_retries_a_connection_error_with_backoff() -> None:
    task = _task(retries=2)
    with pytest.raises(_Retry), retry_if_transient(task, base=10, cap=100):
        raise PbsConnectionError("refused", request_sent=False)
    assert len(task.calls) == 1
    assert 5 <= task.calls[0]["countdown"] <= 40


def test_a_task_fails_at_once_on_a_fingerprint_mismatch() -> None:
    task = _task()
    with pytest.raises(FingerprintMismatch), retry_if_transient(task):
        raise FingerprintMismatch(expected="aa" * 32, presented="bb" * 32)
    assert task.calls == []


def test_no_task_module_retries_by_exception_class_of_its_own() -> None:
    """autoretry_for with PbsConnectionError would retry PbsTlsError (its subclass): every task
    module decides through core.transient instead."""
    offenders = []
    for path in ROOT.glob("*/tasks.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "autoretry_for":
                names = {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)}
                if names & {"PbsConnectionError", "PbsError", "_TRANSIENT", "OperationalError"}:
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


class _UnreachableClient:
    """A PBS client every call of which fails with ``exc`` (the first step's first read)."""

    closed = False  # open: the failure is the host's, not a worker stopping under the run

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __getattr__(self, name: str) -> Any:
        def fail(*args: object, **kwargs: object) -> None:
            raise self.exc

        return fail

    def close(self) -> None:
        pass


def _onboarding_run(pbs_sim: Any, pbs_host: Callable[..., Any]) -> Any:
    host = pbshost_check(host_id=pbs_host(pbs_sim, name="pbs-a").pk)
    tenant = tenant_create(slug="acme", name="Acme", datastore=host.datastores.get(name="store1"))
    run, _ = tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    return run


def _run_task(run: Any, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> tuple[Any, list[dict]]:
    """Run the onboarding task's body once against a host that fails with ``exc``; return its
    outcome (its result, or the Retry it raised) and the retries it scheduled."""
    monkeypatch.setattr(engine, "client_for_host", lambda host: _UnreachableClient(exc))
    retries: list[dict] = []

    def retry(**kwargs: object) -> _Retry:
        retries.append(kwargs)
        return _Retry()

    monkeypatch.setattr(tasks.onboarding_run_execute, "retry", retry)
    try:
        return tasks.onboarding_run_execute.run(run.pk), retries
    except _Retry as raised:
        return raised, retries


@pytest.mark.django_db
def test_an_onboarding_run_fails_at_once_on_a_fingerprint_mismatch(
    pbs_sim: Any, pbs_host: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _onboarding_run(pbs_sim, pbs_host)

    outcome, retries = _run_task(run, monkeypatch, FingerprintMismatch(expected="aa" * 32, presented="bb" * 32))

    assert outcome == "failed"
    assert retries == [], "a changed certificate never heals: no retry is scheduled"
    run.refresh_from_db()
    assert run.status == OnboardingRun.Status.FAILED
    assert run.steps.get(name="user").state == "failed"


@pytest.mark.django_db
def test_an_onboarding_run_retries_a_connection_error(
    pbs_sim: Any, pbs_host: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _onboarding_run(pbs_sim, pbs_host)

    outcome, retries = _run_task(run, monkeypatch, PbsConnectionError("refused", request_sent=False))

    assert isinstance(outcome, _Retry)
    assert len(retries) == 1
    run.refresh_from_db()
    assert run.status == OnboardingRun.Status.RUNNING
    assert run.steps.get(name="user").state == "pending"
