"""Onboarding, repair and offboarding runs: create, enqueue once, recover lost ones."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from core.actors import actor_or_none
from tenants.models import (
    OnboardingRun,
    OnboardingStep,
    Tenant,
)
from tenants.onboarding import (
    LIVE_STATUSES,
    steps_for,
)

ALLOWED_KIND_STATUSES = {
    OnboardingRun.Kind.ONBOARD: (Tenant.Status.PENDING, Tenant.Status.FAILED, Tenant.Status.ONBOARDING),
    OnboardingRun.Kind.REPAIR: (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.FAILED),
    OnboardingRun.Kind.OFFBOARD: (
        Tenant.Status.PENDING, Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.FAILED,
        Tenant.Status.OFFBOARDING,
    ),
}  # fmt: skip

log = logging.getLogger(__name__)


def _enqueue_run(run_id: int, task_id: str) -> None:
    from tenants.tasks import onboarding_run_execute  # tasks import the services: resolved at call time

    onboarding_run_execute.apply_async(args=[run_id], task_id=task_id)


def _enqueue_batch(run_ids: list[int], task_id: str) -> None:
    from tenants.tasks import onboarding_batch_execute  # as above

    onboarding_batch_execute.apply_async(args=[run_ids], task_id=task_id)


def _run_is_stale(run: OnboardingRun) -> bool:
    """A live run nobody works on (its task was lost): re-enqueueing it is safe (lease)."""
    now = timezone.now()
    unclaimed = run.claimed_until is None or run.claimed_until < now
    since = max(t for t in (run.created_at, run.started_at, run.next_attempt_at) if t is not None)
    return unclaimed and now - since > timedelta(seconds=settings.PORTAL_ONBOARDING_STALE_SECONDS)


def onboarding_runs_expect(*, run_ids: list[int], in_seconds: float) -> None:
    """Record that a task for these runs is scheduled (a retry's countdown), so the stale-run
    recovery leaves them alone until then."""
    due = timezone.now() + timedelta(seconds=in_seconds)
    OnboardingRun.objects.filter(pk__in=run_ids, status__in=LIVE_STATUSES).update(next_attempt_at=due)


def onboarding_runs_recover(*, limit: int = 2000) -> list[int]:
    """Enqueue again the live runs whose task was lost (beat, every minute); returns their ids.

    A task can vanish without a trace: a worker killed mid-run (Redis hands an unacked
    message out again only after the visibility timeout, an hour), a broker restarted
    without persistence, a database outage that made the task itself fail. Its run then
    stays queued or running with nobody holding the lease. Runs that are unclaimed and
    stale (``_run_is_stale``) are enqueued in batches per host, like a bulk onboarding; a
    duplicate delivery is harmless (the lease, then the run is found finished).
    """
    now = timezone.now()
    candidates = (
        OnboardingRun.objects.filter(status__in=LIVE_STATUSES)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .select_related("tenant")
        .order_by("pk")[:limit]
    )
    by_host: dict[int | None, list[int]] = {}
    for run in candidates:
        if _run_is_stale(run):
            by_host.setdefault(run.tenant.host_id, []).append(run.pk)
    size = max(1, settings.PORTAL_ONBOARDING_BATCH_SIZE)
    recovered: list[int] = []
    with transaction.atomic():
        for ids in by_host.values():
            for batch in (ids[i : i + size] for i in range(0, len(ids), size)):
                task_id = str(uuid.uuid4())
                OnboardingRun.objects.filter(pk__in=batch).update(celery_task_id=task_id, next_attempt_at=now)
                transaction.on_commit(lambda batch=batch, task_id=task_id: _enqueue_batch(batch, task_id))
                recovered += batch
    if recovered:
        log.warning("re-enqueued %d onboarding run(s) whose task was lost: %s", len(recovered), recovered[:20])
    return recovered


ONBOARDED_STATUSES = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def onboard_kind_for(tenant: Tenant) -> str:
    """What "onboard" means for this tenant: a first onboarding, or, for one that is already
    onboarded, a convergence check (a repair run that finds everything done and writes nothing).
    The API and the command decide by this one rule, so automation may re-run either freely."""
    return OnboardingRun.Kind.REPAIR if tenant.status in ONBOARDED_STATUSES else OnboardingRun.Kind.ONBOARD


def tenant_onboard(
    *,
    tenant_id: int,
    actor: Any = None,
    kind: str = OnboardingRun.Kind.ONBOARD,
    options: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> tuple[OnboardingRun, bool]:
    """Start a run (onboard, repair or offboard) for a tenant, or return its live run.

    At most one live run per tenant (a partial unique constraint): a second submit, even
    a concurrent one, gets the live run back (created=False). The task is enqueued after
    the transaction commits, so a worker never looks for a run that is not there yet.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        live = OnboardingRun.objects.filter(tenant=tenant, status__in=LIVE_STATUSES).first()
        if live is not None:
            if enqueue and _run_is_stale(live):
                transaction.on_commit(lambda: _enqueue_run(live.pk, str(uuid.uuid4())))
            return live, False
        if tenant.status not in ALLOWED_KIND_STATUSES[kind]:
            raise ValidationError(f"A {kind} run is not possible while the tenant is {tenant.status}.")
        task_id = str(uuid.uuid4())
        try:
            with transaction.atomic():
                run = OnboardingRun.objects.create(
                    tenant=tenant, kind=kind, created_by=actor_or_none(actor), celery_task_id=task_id,
                    options=options or {},
                )  # fmt: skip
        except IntegrityError:
            # Another transaction created the live run between our check and insert.
            return OnboardingRun.objects.get(tenant=tenant, status__in=LIVE_STATUSES), False
        OnboardingStep.objects.bulk_create(
            OnboardingStep(run=run, position=i, name=name) for i, name in enumerate(steps_for(kind))
        )
        if kind == OnboardingRun.Kind.OFFBOARD and tenant.status != Tenant.Status.OFFBOARDING:
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.OFFBOARDING)
        audit_record(
            action=f"tenant.{kind}.requested", actor=actor, tenant=tenant, target=tenant.slug,
            detail={"run": run.pk, **(options or {})},
        )  # fmt: skip
        if enqueue:
            transaction.on_commit(lambda: _enqueue_run(run.pk, task_id))
    return run, True


def tenant_onboard_bulk(*, tenant_ids: Iterable[int], actor: Any = None, enqueue: bool = True) -> list[OnboardingRun]:
    """Onboard many tenants: one run each, executed in batches per host that share one
    snapshot of the host's lists (PORTAL_ONBOARDING_BATCH_SIZE runs per task)."""
    runs: list[OnboardingRun] = []
    new_by_host: dict[int | None, list[int]] = {}
    with transaction.atomic():
        for tenant_id in tenant_ids:
            run, created = tenant_onboard(tenant_id=tenant_id, actor=actor, enqueue=False)
            runs.append(run)
            if created:
                new_by_host.setdefault(run.tenant.host_id, []).append(run.pk)
        size = max(1, settings.PORTAL_ONBOARDING_BATCH_SIZE)
        batches = [ids[i : i + size] for ids in new_by_host.values() for i in range(0, len(ids), size)]
        for batch in batches:
            task_id = str(uuid.uuid4())
            OnboardingRun.objects.filter(pk__in=batch).update(celery_task_id=task_id)
            if enqueue:
                transaction.on_commit(lambda batch=batch, task_id=task_id: _enqueue_batch(batch, task_id))
    return runs


def tenant_repair(*, tenant_id: int, actor: Any = None, enqueue: bool = True) -> tuple[OnboardingRun, bool]:
    """One-click drift repair: re-run the idempotent convergence for the tenant."""
    return tenant_onboard(tenant_id=tenant_id, actor=actor, kind=OnboardingRun.Kind.REPAIR, enqueue=enqueue)


def tenant_offboard(
    *,
    tenant_id: int,
    actor: Any = None,
    confirm_slug: str,
    delete_data: bool = False,
    enqueue: bool = True,
) -> tuple[OnboardingRun, bool]:
    """Offboard after a typed confirmation of the slug: revoke tokens, remove the user's
    own ACLs, delete the user and the prune job, delete the namespace only if asked."""
    tenant = Tenant.objects.get(pk=tenant_id)
    if confirm_slug.strip() != tenant.slug:
        raise ValidationError({"confirm_slug": [f"Type '{tenant.slug}' to confirm."]})
    return tenant_onboard(
        tenant_id=tenant_id, actor=actor, kind=OnboardingRun.Kind.OFFBOARD,
        options={"delete_data": bool(delete_data)}, enqueue=enqueue,
    )  # fmt: skip
