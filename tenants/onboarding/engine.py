"""Running a run: claim it, drive its steps, retry transient failures, finish or fail it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import audit_record
from core.signals import send_logged
from core.transient import is_transient
from pbsclient import PbsClient
from pbsclient.errors import PbsError
from tenants.hints import OwnershipConflict, VerificationFailed, hint_for
from tenants.models import OnboardingRun, OnboardingStep, PbsHost, Tenant
from tenants.onboarding.base import LIVE_STATUSES, STEP_LABELS, RunResult, lease
from tenants.onboarding.context import StepContext, context_for
from tenants.onboarding.offboarding import OFFBOARD_STEP_FUNCTIONS, STEP_FUNCTIONS
from tenants.onboarding.parallel import LockedState, execute_runs, host_concurrency
from tenants.onboarding.steps import AHEAD_AFTER, start_ahead
from tenants.pbs import client_for_host
from tenants.pbsstate import PbsState, SnapshotState
from tenants.signals import tenant_run_finished

log = logging.getLogger(__name__)


def _claim(run_id: int) -> bool:
    now = timezone.now()
    return bool(
        OnboardingRun.objects.filter(pk=run_id, status__in=LIVE_STATUSES)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(
            status=OnboardingRun.Status.RUNNING,
            claimed_until=now + lease(),
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), now),
        )
    )


def _release(run_id: int) -> None:
    OnboardingRun.objects.filter(pk=run_id).update(claimed_until=None)


def _explain(exc: BaseException, ctx_host: PbsHost, step: str, store: str) -> tuple[str, str]:
    if isinstance(exc, OwnershipConflict | VerificationFailed):
        return exc.message, exc.hint
    if isinstance(exc, PbsError):
        return str(exc), hint_for(exc, host=ctx_host, step=step, store=store)
    if isinstance(exc, OperationalError):
        return f"database error: {exc}", "The portal's database was busy or unreachable; retry."
    return (
        f"unexpected error ({type(exc).__name__}): {exc}",
        "This is a bug in the portal; the run can be retried safely. Please report it.",
    )


def _finish_run(run: OnboardingRun, ctx: StepContext) -> None:
    tenant = ctx.tenant
    now = timezone.now()
    with transaction.atomic():
        OnboardingRun.objects.filter(pk=run.pk).update(
            status=OnboardingRun.Status.SUCCEEDED, finished_at=now, claimed_until=None,
            error="", error_hint="",
        )  # fmt: skip
        if run.kind == OnboardingRun.Kind.OFFBOARD:
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.OFFBOARDED, offboarded_at=now)
            action = "tenant.offboard.finished"
        else:
            updates: dict[str, Any] = {}
            if tenant.status in (
                Tenant.Status.PENDING, Tenant.Status.ONBOARDING, Tenant.Status.FAILED
            ):  # fmt: skip
                updates["status"] = Tenant.Status.ACTIVE
            if tenant.activated_at is None:
                updates["activated_at"] = now
            if updates:
                Tenant.objects.filter(pk=tenant.pk).update(**updates)
            action = f"tenant.{run.kind}.finished"
        audit_record(
            action=action, actor=ctx.actor, tenant=tenant, target=tenant.slug,
            detail={"run": run.pk, "attempts": run.attempts},
        )  # fmt: skip
        transaction.on_commit(lambda: _announce_finished(run, tenant))


def _announce_finished(run: OnboardingRun, tenant: Tenant) -> None:
    send_logged(tenant_run_finished, OnboardingRun, tenant_id=tenant.pk, run_id=run.pk, kind=run.kind)


def _fail_run(run: OnboardingRun, tenant: Tenant, actor: Any, error: str, hint: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        OnboardingRun.objects.filter(pk=run.pk).update(
            status=OnboardingRun.Status.FAILED, finished_at=now, claimed_until=None,
            error=error[:4000], error_hint=hint[:4000],
        )  # fmt: skip
        if run.kind == OnboardingRun.Kind.ONBOARD and tenant.status in (
            Tenant.Status.PENDING, Tenant.Status.ONBOARDING
        ):  # fmt: skip
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.FAILED)
        audit_record(
            action=f"tenant.{run.kind}.failed", actor=actor, tenant=tenant, target=tenant.slug,
            result="failed", detail={"run": run.pk, "error": error[:500]},
        )  # fmt: skip


def _settle_ahead(ctx: StepContext, steps: list[OnboardingStep], functions: dict[str, Any]) -> None:
    """An earlier step failed: record the creates sent ahead (``start_ahead``) as their
    steps would, so nothing PBS made goes unrecorded; a create that failed is left to the
    next attempt, which looks first."""
    for step in steps:
        future = ctx.ahead.get(step.name)
        if future is None or step.state == OnboardingStep.State.DONE:
            continue
        if future.exception() is not None:  # waits for the answer
            continue
        ctx.notes = []
        try:
            outcome = functions[step.name](ctx)
            now = timezone.now()
            step.state = OnboardingStep.State.DONE
            step.attempts += 1
            step.started_at = step.started_at or now
            step.outcome = outcome[:16]
            step.detail = "; ".join(ctx.notes)[:255]
            step.last_error = ""
            step.finished_at = now
            step.save(
                update_fields=["state", "attempts", "started_at", "outcome", "detail", "last_error", "finished_at"]
            )
        except Exception:  # the next attempt looks first and records it then
            log.warning(
                "onboarding run %s: step %s sent ahead could not be recorded",
                ctx.run.pk if ctx.run else None,
                step.name,
                exc_info=True,
            )
    ctx.ahead.clear()


def run_execute(
    *,
    run_id: int,
    client: PbsClient | None = None,
    state: PbsState | None = None,
    final_attempt: bool = False,
) -> RunResult:
    """Execute (or resume) one run. Steps already done are skipped.

    1. Claim the run's lease (a conditional update); if someone else holds it: BUSY.
    2. For each unfinished step: mark it running, call its function, record the outcome.
    3. A transient error leaves the step pending and returns RETRY (or, on the final
       attempt, fails the run); a permanent error fails the run with a hint.
    4. All steps done: the run succeeds and the tenant becomes active (or offboarded).
    """
    if not _claim(run_id):
        run = OnboardingRun.objects.filter(pk=run_id).only("status").first()
        if run is None or run.status not in LIVE_STATUSES:
            return RunResult.GONE
        return RunResult.BUSY
    run = OnboardingRun.objects.select_related("tenant__host", "tenant__datastore", "created_by").get(pk=run_id)
    tenant = run.tenant
    actor = run.created_by
    # A tenant nothing was ever tried for: its steps create first (see StepContext).
    create_first = run.kind == OnboardingRun.Kind.ONBOARD and tenant.status == Tenant.Status.PENDING
    if run.kind == OnboardingRun.Kind.ONBOARD and tenant.status in (
        Tenant.Status.PENDING, Tenant.Status.FAILED
    ):  # fmt: skip
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ONBOARDING)
        tenant.status = Tenant.Status.ONBOARDING
    if tenant.host is None or tenant.datastore is None:
        _fail_run(run, tenant, actor, "The tenant has no placement.", "Choose a host and datastore.")
        return RunResult.FAILED
    own_client = client is None
    current = ""
    finished = False
    ahead: ThreadPoolExecutor | None = None
    try:
        if client is None:
            client = client_for_host(tenant.host)
        ctx = context_for(tenant, client, state, actor=actor, run=run, create_first=create_first)
        functions = OFFBOARD_STEP_FUNCTIONS if run.kind == OnboardingRun.Kind.OFFBOARD else STEP_FUNCTIONS
        steps = list(run.steps.all())
        if create_first and own_client:  # a run alone on its client; a batch has its own concurrency
            ahead = ThreadPoolExecutor(max_workers=4, thread_name_prefix="onboarding-ahead")
        lease_renew_at = timezone.now() + lease() / 2
        for step in steps:
            if step.state == OnboardingStep.State.DONE:
                continue
            current = step.name
            step.state = OnboardingStep.State.RUNNING
            step.attempts += 1
            step.started_at = step.started_at or timezone.now()
            step.save(update_fields=["state", "attempts", "started_at"])
            ctx.notes = []
            try:
                outcome = functions[step.name](ctx)
            except Exception as exc:
                error, hint = _explain(exc, tenant.host, step.name, ctx.store)
                # A client closed under the run (its worker is stopping) is no fault of the
                # run: the step stays pending for the next delivery.
                transient = is_transient(exc) or client.closed
                step.state = (
                    OnboardingStep.State.PENDING if transient and not final_attempt else OnboardingStep.State.FAILED
                )
                step.last_error = error[:4000]
                step.save(update_fields=["state", "last_error"])
                _settle_ahead(ctx, steps, functions)
                if not isinstance(exc, PbsError | OwnershipConflict | VerificationFailed):
                    log.exception("onboarding run %s step %s failed", run.pk, step.name)
                if transient and not final_attempt:
                    OnboardingRun.objects.filter(pk=run.pk).update(
                        error=f"{STEP_LABELS.get(step.name, step.name)}: {error} (will retry)"[:4000],
                        error_hint=hint[:4000],
                    )
                    return RunResult.RETRY
                if transient:
                    hint = f"Gave up after {run.attempts} attempts. {hint}"
                _fail_run(run, tenant, actor, f"{STEP_LABELS.get(step.name, step.name)}: {error}", hint)
                return RunResult.FAILED
            step.state = OnboardingStep.State.DONE
            step.outcome = outcome[:16]
            step.detail = "; ".join(ctx.notes)[:255]
            step.last_error = ""
            step.finished_at = timezone.now()
            step.save(update_fields=["state", "outcome", "detail", "last_error", "finished_at"])
            if ahead is not None and step.name == AHEAD_AFTER:
                start_ahead(ctx, {s.name for s in steps if s.state != OnboardingStep.State.DONE}, ahead.submit)
            # Renew the lease once half of it is used up (not after every step: each
            # database write costs a commit, and a run takes seconds, the lease minutes).
            now = timezone.now()
            if now >= lease_renew_at:
                OnboardingRun.objects.filter(pk=run.pk).update(claimed_until=now + lease())
                lease_renew_at = now + lease() / 2
        _finish_run(run, ctx)  # releases the lease too
        finished = True
        return RunResult.SUCCEEDED
    except Exception as exc:
        # Outside any step (building the client, reading steps): same rules.
        error, hint = _explain(exc, tenant.host, current, tenant.datastore.name)
        if is_transient(exc) and not final_attempt:
            OnboardingRun.objects.filter(pk=run.pk).update(error=f"{error} (will retry)"[:4000])
            return RunResult.RETRY
        log.exception("onboarding run %s failed outside a step", run.pk)
        _fail_run(run, tenant, actor, error, hint)
        return RunResult.FAILED
    finally:
        if ahead is not None:
            ahead.shutdown(wait=True)  # no request outlives its run (or its client)
        if not finished:
            _release(run_id)
        if own_client and client is not None:
            client.close()


def batch_execute(*, run_ids: list[int], final_attempt: bool = False) -> dict[int, RunResult]:
    """Execute many runs, one host at a time, sharing one client and one snapshot of the
    host's users, ACLs, prune jobs and namespaces (read only by the runs that look before
    they write: repair and offboarding; a first onboarding creates and reads nothing to
    prove absence). The runs of one host run side by side, at most
    ``host_concurrency(host)`` at a time."""
    runs = OnboardingRun.objects.filter(pk__in=run_ids).select_related("tenant__host").order_by("tenant__host_id", "pk")
    by_host: dict[int | None, list[OnboardingRun]] = {}
    for run in runs:
        by_host.setdefault(run.tenant.host_id, []).append(run)
    results: dict[int, RunResult] = dict.fromkeys(run_ids, RunResult.GONE)
    for host_runs in by_host.values():
        host = host_runs[0].tenant.host
        if host is None:
            for run in host_runs:
                results[run.pk] = run_execute(run_id=run.pk, final_attempt=final_attempt)
            continue
        with client_for_host(host) as client:
            state = LockedState(SnapshotState(client))

            def execute(run_id: int, client: PbsClient = client, state: Any = state) -> RunResult:
                return run_execute(run_id=run_id, client=client, state=state, final_attempt=final_attempt)

            results.update(execute_runs([run.pk for run in host_runs], limit=host_concurrency(host), execute=execute))
    return results


def runs_drive(
    *,
    run_ids: list[int],
    timeout: float = 600.0,
    sleep: Callable[[float], None] | None = None,
) -> dict[int, RunResult]:
    """Drive runs to an end in this process (management commands with --wait).

    Runs are executed here (in per-host batches) unless a worker holds their lease, in
    which case this waits for the worker. Transient errors are retried with backoff up
    to PORTAL_ONBOARDING_MAX_RETRIES, like the Celery task would.
    """
    import random
    import time

    sleep = sleep or time.sleep
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    results: dict[int, RunResult] = {}
    attempt = 0
    while pending:
        final = attempt >= settings.PORTAL_ONBOARDING_MAX_RETRIES or time.monotonic() >= deadline
        round_results = batch_execute(run_ids=pending, final_attempt=final)
        busy_done = [run_id for run_id, result in round_results.items() if result is RunResult.GONE]
        for run_id, result in round_results.items():
            if result in (RunResult.SUCCEEDED, RunResult.FAILED):
                results[run_id] = result
        for run_id in busy_done:
            run = OnboardingRun.objects.filter(pk=run_id).only("status").first()
            results[run_id] = (
                RunResult.SUCCEEDED
                if run is not None and run.status == OnboardingRun.Status.SUCCEEDED
                else RunResult.FAILED
            )
        pending = [run_id for run_id, result in round_results.items() if result in (RunResult.RETRY, RunResult.BUSY)]
        if not pending:
            break
        if time.monotonic() >= deadline and final:
            for run_id in pending:
                results[run_id] = RunResult.BUSY
            break
        busy_only = all(round_results[run_id] is RunResult.BUSY for run_id in pending)
        if busy_only:
            sleep(1.0)
        else:
            attempt += 1
            base = settings.PORTAL_ONBOARDING_RETRY_BASE_SECONDS
            sleep(random.uniform(0, min(60.0, base * 2**attempt)))  # noqa: S311 (jitter)
    return results
