"""Daily metering: runs fanned out per host chunk, samples and gaps stored, runs finished."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from attribution.selectors import attribution_by_tenant_for_day
from audit.services import audit_record
from billing.metering import GcFigures, HostJob, HostOutcome, Measurement, TenantTarget, collect_host, collect_hosts
from billing.models import (
    MeteringGap,
    MeteringHostResult,
    MeteringRun,
    UsageSample,
)
from billing.services.base import METERED_STATUSES, logger
from billing.signals import usage_sampled
from core.actors import actor_or_none
from core.signals import send_logged
from offsite.selectors import offsite_usage_bytes_by_tenant
from tenants.models import PbsHost, Tenant
from tenants.pbs import async_client_for_host

ClientFactory = Callable[[PbsHost], Any]


def _default_client_factory(host: PbsHost) -> Any:

    # tenants.pbs falls back to the automation token when no metering token is configured.
    return async_client_for_host(host, purpose="metering")


def _metered_tenants() -> Any:
    return Tenant.objects.filter(status__in=METERED_STATUSES, host__isnull=False, datastore__isnull=False).exclude(
        namespace=""
    )


def metering_run_start(
    *,
    day: dt.date | None = None,
    trigger: str = MeteringRun.Trigger.SCHEDULE,
    actor: Any = None,
    chunk_size: int | None = None,
) -> MeteringRun:
    """Create a run for ``day`` with one pending result per host chunk.

    Steps: mark runs left running for too long as failed (a worker died); group the metered
    tenants by host and cut each host's list into chunks; tenants on a disabled host get a
    gap right away (the host is out of service, so nothing can be measured).
    """
    day = day or timezone.localdate()
    chunk_size = max(1, chunk_size or settings.PORTAL_METERING_CHUNK_SIZE)
    metering_runs_reap()
    rows = list(
        _metered_tenants().order_by("host_id", "id").values_list("id", "host_id", "host__enabled", "host__name")
    )
    with transaction.atomic():
        run = MeteringRun.objects.create(day=day, trigger=trigger, created_by=actor_or_none(actor))
        by_host: dict[int, list[int]] = {}
        disabled: list[tuple[int, str]] = []
        for tenant_id, host_id, enabled, host_name in rows:
            if enabled:
                by_host.setdefault(host_id, []).append(tenant_id)
            else:
                disabled.append((tenant_id, host_name))
        results = []
        for host_id, tenant_ids in by_host.items():
            for i in range(0, len(tenant_ids), chunk_size):
                chunk = tenant_ids[i : i + chunk_size]
                results.append(
                    MeteringHostResult(
                        run=run, host_id=host_id, first_tenant_id=chunk[0], tenant_ids=chunk, tenants=len(chunk)
                    )
                )
        MeteringHostResult.objects.bulk_create(results)
        if disabled:
            _gaps_record(run=run, day=day, failures=[(t, h, "host disabled in the portal") for t, h in disabled])
        run.hosts_total = len(by_host)
        run.tenants_total = len(rows)
        run.tenants_gap = len(disabled)
        run.save(update_fields=["hosts_total", "tenants_total", "tenants_gap"])
        if actor is not None:
            audit_record(action="billing.metering_started", actor=actor, target=str(day), detail={"run": run.pk})
    if not results:
        metering_run_finish(run_id=run.pk)
    return run


def metering_runs_reap(*, older_than_hours: int | None = None) -> int:
    """Fail runs still 'running' long after they began (their worker died); returns how many."""
    hours = older_than_hours or settings.PORTAL_METERING_STALE_HOURS
    cutoff = timezone.now() - dt.timedelta(hours=hours)
    stale = list(
        MeteringRun.objects.filter(status=MeteringRun.Status.RUNNING, started_at__lt=cutoff).values_list(
            "id", flat=True
        )
    )
    for run_id in stale:
        MeteringHostResult.objects.filter(
            run_id=run_id, status__in=[MeteringHostResult.Status.PENDING, MeteringHostResult.Status.RUNNING]
        ).update(
            status=MeteringHostResult.Status.FAILED, error="never finished (worker lost)", finished_at=timezone.now()
        )
        metering_run_finish(run_id=run_id)
    return len(stale)


def _job_for(result: MeteringHostResult, host: PbsHost, tenants: Sequence[Tenant], factory: ClientFactory) -> HostJob:
    cached = {}
    for tenant in tenants:
        ds = tenant.datastore
        if ds is not None:
            cached[ds.name] = (ds.gc_index_data_bytes, ds.gc_disk_bytes)
    return HostJob(
        key=result.pk,
        host_name=host.name,
        client_factory=lambda: factory(host),
        targets=[TenantTarget(t.pk, t.datastore.name, t.namespace) for t in tenants],
        max_in_flight=host.max_connections or 8,
        cached_gc=cached,
    )


def _claim_chunk(run_id: int, host_id: int, tenant_ids: Sequence[int]) -> MeteringHostResult | None:
    first = min(tenant_ids)
    claimed = MeteringHostResult.objects.filter(
        run_id=run_id,
        host_id=host_id,
        first_tenant_id=first,
        status__in=[MeteringHostResult.Status.PENDING, MeteringHostResult.Status.RUNNING],
    ).update(status=MeteringHostResult.Status.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1)
    if claimed != 1:
        return None
    return MeteringHostResult.objects.select_related("run", "host").get(
        run_id=run_id, host_id=host_id, first_tenant_id=first
    )


def _chunk_tenants(host_id: int, tenant_ids: Sequence[int]) -> list[Tenant]:
    # Tenants offboarded or moved since the run started are skipped, not gapped.
    return list(
        _metered_tenants().filter(pk__in=tenant_ids, host_id=host_id).select_related("datastore").order_by("pk")
    )


def metering_collect_chunk(
    *,
    run_id: int,
    host_id: int,
    tenant_ids: Sequence[int],
    client_factory: ClientFactory | None = None,
) -> MeteringHostResult | None:
    """Measure one chunk of one host's tenants and store the outcome (idempotent).

    A chunk already finished is left alone (returns None): Celery may deliver twice.
    """
    if not tenant_ids:
        return None
    result = _claim_chunk(run_id, host_id, tenant_ids)
    if result is None:
        return None
    tenants = _chunk_tenants(host_id, tenant_ids)
    job = _job_for(result, result.host, tenants, client_factory or _default_client_factory)
    outcome = asyncio.run(
        collect_host(
            job,
            attempts=settings.PORTAL_METERING_ATTEMPTS,
            retry_delay_s=settings.PORTAL_METERING_RETRY_DELAY_SECONDS,
        )
    )
    metering_outcome_store(result=result, outcome=outcome)
    metering_run_finish(run_id=run_id)
    return result


def metering_collect_run_inline(*, run: MeteringRun, client_factory: ClientFactory | None = None) -> MeteringRun:
    """Collect every pending chunk of ``run`` in this process, all hosts at once.

    Used by ``manage.py billing collect`` (and benchmarks): one event loop, each host
    bounded by its own connection limit, so the wall time approaches the run over Celery
    with one worker per host.
    """
    factory = client_factory or _default_client_factory
    pending = list(
        MeteringHostResult.objects.filter(run=run, status=MeteringHostResult.Status.PENDING).select_related("host")
    )
    claimed: list[tuple[MeteringHostResult, HostJob]] = []
    for result in pending:
        again = _claim_chunk(run.pk, result.host_id, result.tenant_ids)
        if again is None:
            continue
        tenants = _chunk_tenants(result.host_id, result.tenant_ids)
        claimed.append((again, _job_for(again, again.host, tenants, factory)))
    outcomes = asyncio.run(
        collect_hosts(
            [job for _, job in claimed],
            attempts=settings.PORTAL_METERING_ATTEMPTS,
            retry_delay_s=settings.PORTAL_METERING_RETRY_DELAY_SECONDS,
        )
    )
    for (result, _), outcome in zip(claimed, outcomes, strict=True):
        metering_outcome_store(result=result, outcome=outcome)
    metering_run_finish(run_id=run.pk)
    run.refresh_from_db()
    return run


_SAMPLE_FIELDS = [
    "taken_at",
    "run",
    "host_name",
    "datastore",
    "namespace",
    "logical_bytes",
    "latest_bytes",
    "physical_estimate_bytes",
    "offsite_bytes",
    "snapshot_count",
    "unsized_snapshot_count",
    "group_count",
    "namespace_count",
    "newest_backup_at",
    "oldest_backup_at",
    "gc_index_data_bytes",
    "gc_disk_bytes",
    "gc_source",
    "referenced_bytes",
    "exclusive_bytes",
    "share_bytes",
    "physical_share_bytes",
    "chunk_gc_at",
    "chunk_day",
]


def _chunk_figures_copy(samples: Sequence[UsageSample], *, day: dt.date) -> None:
    """Copy each tenant's chunk-exact figures of ``day`` (attribution) into its sample; a
    tenant without them keeps them empty, so the chunk metric bills its estimate that day."""
    found = attribution_by_tenant_for_day(day=day, tenant_ids=[s.tenant_id for s in samples])
    for sample in samples:
        row = found.get(sample.tenant_id)
        if row is None:
            continue
        sample.referenced_bytes = row.referenced_bytes
        sample.exclusive_bytes = row.exclusive_bytes
        sample.share_bytes = row.share_bytes
        sample.physical_share_bytes = row.physical_share_bytes
        sample.chunk_gc_at = row.gc_time
        sample.chunk_day = row.day


def _sample_from(
    m: Measurement, *, day: dt.date, run: MeteringRun, host_name: str, now: dt.datetime, offsite_bytes: int | None
) -> UsageSample:
    gc: GcFigures = m.gc
    return UsageSample(
        tenant_id=m.tenant_id,
        day=day,
        taken_at=now,
        run=run,
        host_name=host_name,
        datastore=m.store,
        namespace=m.namespace,
        logical_bytes=m.logical_bytes,
        latest_bytes=m.latest_bytes,
        physical_estimate_bytes=m.physical_estimate_bytes,
        offsite_bytes=offsite_bytes,
        snapshot_count=m.snapshot_count,
        unsized_snapshot_count=m.unsized_snapshot_count,
        group_count=m.group_count,
        namespace_count=m.namespace_count,
        newest_backup_at=m.newest_backup_at,
        oldest_backup_at=m.oldest_backup_at,
        gc_index_data_bytes=gc.index_data_bytes,
        gc_disk_bytes=gc.disk_bytes,
        gc_source=gc.source,
    )


def _gaps_record(*, run: MeteringRun, day: dt.date, failures: Iterable[tuple[int, str, str]]) -> int:
    """Record (tenant_id, host_name, reason) gaps, except where the day already has a sample
    (an earlier successful collection of the same day stays: it was measured)."""
    failures = list(failures)
    if not failures:
        return 0
    have = set(
        UsageSample.objects.filter(day=day, tenant_id__in=[f[0] for f in failures]).values_list("tenant_id", flat=True)
    )
    gaps = [
        MeteringGap(tenant_id=t, day=day, run=run, host_name=h, reason=r[:2000])
        for t, h, r in failures
        if t not in have
    ]
    MeteringGap.objects.bulk_create(
        gaps,
        update_conflicts=True,
        unique_fields=["tenant", "day"],
        update_fields=["run", "host_name", "reason", "recorded_at"],
        batch_size=500,
    )
    return len(gaps)


def metering_outcome_store(*, result: MeteringHostResult, outcome: HostOutcome) -> None:
    """Write one chunk's measurements (overwriting the day's samples) and gaps.

    Steps: upsert samples on (tenant, day); drop gaps those samples fill; record gaps for
    failed tenants; finish the chunk's result row; on commit, announce each sample
    (``billing.signals.usage_sampled``) so quota checks run on fresh figures.
    """
    run = result.run
    now = timezone.now()
    offsite = offsite_usage_bytes_by_tenant([m.tenant_id for m in outcome.measurements])
    samples = [
        _sample_from(
            m, day=run.day, run=run, host_name=outcome.host_name, now=now, offsite_bytes=offsite.get(m.tenant_id)
        )
        for m in outcome.measurements
    ]
    _chunk_figures_copy(samples, day=run.day)
    with transaction.atomic():
        UsageSample.objects.bulk_create(
            samples,
            update_conflicts=True,
            unique_fields=["tenant", "day"],
            update_fields=_SAMPLE_FIELDS,
            batch_size=500,
        )
        sampled_ids = [m.tenant_id for m in outcome.measurements]
        for i in range(0, len(sampled_ids), 500):
            MeteringGap.objects.filter(day=run.day, tenant_id__in=sampled_ids[i : i + 500]).delete()
        gap_count = _gaps_record(
            run=run, day=run.day, failures=[(f.tenant_id, outcome.host_name, f.reason) for f in outcome.failures]
        )
        if outcome.failures and not outcome.measurements:
            status = MeteringHostResult.Status.FAILED
        elif outcome.failures:
            status = MeteringHostResult.Status.PARTIAL
        else:
            status = MeteringHostResult.Status.OK
        MeteringHostResult.objects.filter(pk=result.pk).update(
            status=status,
            tenants=len(outcome.measurements) + len(outcome.failures),
            sampled=len(outcome.measurements),
            gaps=gap_count,
            requests=outcome.requests,
            error=outcome.error[:4000],
            finished_at=timezone.now(),
            duration_ms=int(outcome.duration_s * 1000),
        )
        sample_ids: list[tuple[int, int]] = []
        for i in range(0, len(sampled_ids), 500):
            sample_ids += list(
                UsageSample.objects.filter(day=run.day, tenant_id__in=sampled_ids[i : i + 500]).values_list(
                    "tenant_id", "id"
                )
            )
        transaction.on_commit(lambda: _announce_samples(sample_ids))


def _announce_samples(sample_ids: Sequence[tuple[int, int]]) -> None:
    for tenant_id, sample_id in sample_ids:
        send_logged(usage_sampled, UsageSample, tenant_id=tenant_id, sample_id=sample_id)


def metering_run_finish(*, run_id: int) -> bool:
    """Close the run once no chunk is pending; True if this call closed it (race-safe)."""
    open_chunks = MeteringHostResult.objects.filter(
        run_id=run_id, status__in=[MeteringHostResult.Status.PENDING, MeteringHostResult.Status.RUNNING]
    )
    if open_chunks.exists():
        return False
    results = list(
        MeteringHostResult.objects.filter(run_id=run_id).values("host_id", "status", "sampled", "gaps", "requests")
    )
    run = MeteringRun.objects.get(pk=run_id)
    failed_hosts = {r["host_id"] for r in results if r["status"] == MeteringHostResult.Status.FAILED}
    sampled = sum(r["sampled"] for r in results)
    # Gaps this run recorded and no later collection of the day has filled.
    gaps = MeteringGap.objects.filter(run_id=run_id).count()
    if results and len(failed_hosts) == len({r["host_id"] for r in results}) and not sampled:
        status = MeteringRun.Status.FAILED
    elif gaps or failed_hosts:
        status = MeteringRun.Status.PARTIAL
    else:
        status = MeteringRun.Status.OK
    changed = MeteringRun.objects.filter(pk=run_id, status=MeteringRun.Status.RUNNING).update(
        status=status,
        finished_at=timezone.now(),
        hosts_failed=len(failed_hosts),
        tenants_sampled=sampled,
        tenants_gap=gaps,
        requests=sum(r["requests"] for r in results),
    )
    if changed:
        logger.info("metering run %s for %s finished: %s, %s sampled, %s gaps", run_id, run.day, status, sampled, gaps)
    return changed == 1
