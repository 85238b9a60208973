"""Billing writes: metering runs and samples, closing a month, corrections, plans.

Each service is one transaction; side effects (signals, Celery enqueues) run on commit.
Everything touching money writes an audit row with the acting user. The arithmetic lives
in billing.pricing (pure), the PBS conversation in billing.metering (async, no database).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from audit.services import audit_record
from billing import pricing
from billing.metering import GcFigures, HostJob, HostOutcome, Measurement, TenantTarget, collect_host, collect_hosts
from billing.models import (
    BillingPeriod,
    CreditNote,
    DocumentSequence,
    Invoice,
    InvoiceLine,
    MeteringGap,
    MeteringHostResult,
    MeteringRun,
    UsageSample,
)
from billing.signals import usage_sampled
from core.signals import send_logged
from offsite.selectors import offsite_usage_bytes_by_tenant
from plans.models import Plan
from tenants.models import PbsHost, Tenant

logger = logging.getLogger(__name__)

# Tenants whose data is on PBS and billed: measured every day.
METERED_STATUSES = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.OFFBOARDING)
METRIC_FIELDS = {
    Plan.Metric.LOGICAL: "logical_bytes",
    Plan.Metric.LATEST: "latest_bytes",
    Plan.Metric.PHYSICAL: "physical_estimate_bytes",
}


class BillingError(Exception):
    """A billing request that cannot be carried out; the message says why, for people."""


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --- metering ----------------------------------------------------------------------


ClientFactory = Callable[[PbsHost], Any]


def _default_client_factory(host: PbsHost) -> Any:
    from tenants.pbs import async_client_for_host

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
    chunk_size = max(1, chunk_size or _setting("PORTAL_METERING_CHUNK_SIZE", 500))
    metering_runs_reap()
    rows = list(
        _metered_tenants().order_by("host_id", "id").values_list("id", "host_id", "host__enabled", "host__name")
    )
    with transaction.atomic():
        run = MeteringRun.objects.create(
            day=day, trigger=trigger, created_by=actor if getattr(actor, "pk", None) else None
        )
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
    hours = older_than_hours or _setting("PORTAL_METERING_STALE_HOURS", 6)
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
            attempts=_setting("PORTAL_METERING_ATTEMPTS", 3),
            retry_delay_s=_setting("PORTAL_METERING_RETRY_DELAY_SECONDS", 10.0),
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
            attempts=_setting("PORTAL_METERING_ATTEMPTS", 3),
            retry_delay_s=_setting("PORTAL_METERING_RETRY_DELAY_SECONDS", 10.0),
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
]


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


# --- numbering -----------------------------------------------------------------------


def _allocate_numbers(prefix: str, year: int, count: int) -> list[str]:
    """Reserve ``count`` consecutive numbers; call inside the transaction that uses them, so a
    rollback gives them back and the sequence stays gap-free."""
    if count <= 0:
        return []
    key = f"{prefix}{year}"
    DocumentSequence.objects.get_or_create(key=key)
    seq = DocumentSequence.objects.select_for_update().get(key=key)
    first = seq.last_number + 1
    seq.last_number += count
    seq.save(update_fields=["last_number"])
    return [f"{key}-{n:06d}" for n in range(first, first + count)]


# --- computing an invoice --------------------------------------------------------------


@dataclass
class DraftInvoice:
    invoice: Invoice
    lines: list[InvoiceLine] = field(default_factory=list)


@dataclass(frozen=True)
class _DayFigures:
    logical: int
    latest: int
    physical: int | None
    snapshots: int
    groups: int
    offsite: int | None = None


def _local_date(value: dt.datetime | None) -> dt.date | None:
    return None if value is None else timezone.localdate(value)


def _draft(
    *,
    tenant: Tenant,
    plan: Plan,
    period: BillingPeriod,
    days: Sequence[dt.date],
    figures: dict[dt.date, _DayFigures],
    carry_in: int | None,
    now: dt.datetime,
    actor: Any,
    offsite_carry_in: int | None = None,
) -> DraftInvoice:
    metric = METRIC_FIELDS[Plan.Metric(plan.metric)]
    attr = {"logical_bytes": "logical", "latest_bytes": "latest", "physical_estimate_bytes": "physical"}[metric]
    values = {day: getattr(f, attr) for day, f in figures.items()}
    summary = pricing.usage_summary(days, values, carry_in=carry_in)
    # The offsite copy is its own line, averaged the same way, only when the plan prices it
    # and the tenant had an offsite copy measured in (or carried into) the period.
    offsite_values = {day: f.offsite for day, f in figures.items() if f.offsite is not None}
    offsite_gib = None
    if plan.offsite_price_per_gib is not None and (offsite_values or offsite_carry_in is not None):
        offsite_gib = pricing.usage_summary(days, offsite_values, carry_in=offsite_carry_in).billed_gib
    priced = pricing.price_lines(
        billed_gib=summary.billed_gib,
        metric=plan.metric,
        included_gib=plan.included_gib,
        unit_price=plan.price_per_gib,
        base_fee=plan.base_fee,
        minimum_charge=plan.minimum_charge,
        currency=plan.currency,
        offsite_gib=offsite_gib,
        offsite_unit_price=plan.offsite_price_per_gib,
    )
    last_known = figures[max(figures)] if figures else None
    invoice = Invoice(
        period=period,
        tenant=tenant,
        status=Invoice.Status.ISSUED,
        issued_at=now,
        issued_by=actor if getattr(actor, "pk", None) else None,
        client_name=tenant.name,
        tenant_slug=tenant.slug,
        host_name=tenant.host.name if tenant.host_id else "",
        datastore=tenant.datastore.name if tenant.datastore_id else "",
        namespace=tenant.namespace,
        plan_name=plan.name,
        metric=plan.metric,
        currency=plan.currency,
        included_gib=plan.included_gib,
        unit_price=plan.price_per_gib,
        base_fee=plan.base_fee,
        minimum_charge=plan.minimum_charge,
        first_day=days[0],
        last_day=days[-1],
        active_days=summary.active_days,
        samples=summary.samples,
        gaps=summary.gaps,
        avg_bytes=summary.avg_bytes,
        avg_gib=summary.avg_gib,
        peak_gib=summary.peak_gib,
        billed_gib=summary.billed_gib,
        billable_gib=priced.billable_gib,
        snapshots=last_known.snapshots if last_known else 0,
        groups=last_known.groups if last_known else 0,
        total=priced.total,
    )
    lines = [
        InvoiceLine(
            position=i,
            kind=line.kind,
            description=line.description[:255],
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            amount=line.amount,
        )
        for i, line in enumerate(priced.lines, start=1)
    ]
    return DraftInvoice(invoice=invoice, lines=lines)


def _tenant_days(tenant: Tenant, period: BillingPeriod) -> list[dt.date]:
    return pricing.active_days(
        start=period.start,
        end=period.end,
        activated_on=_local_date(tenant.activated_at),
        offboarded_on=_local_date(tenant.offboarded_at),
    )


def _billable_tenants(period: BillingPeriod) -> Any:
    """Tenants active on at least one day of the period (by local date)."""
    return (
        Tenant.objects.filter(activated_at__isnull=False, activated_at__date__lte=period.end)
        .filter(Q(offboarded_at__isnull=True) | Q(offboarded_at__date__gte=period.start))
        .select_related("plan", "host", "datastore")
    )


def _carry_ins(tenant_ids: Sequence[int], before: dt.date) -> dict[int, dict[str, int | None]]:
    """Per tenant, the last known value of each metric before ``before`` (one query per 500)."""
    out: dict[int, dict[str, int | None]] = {}
    for i in range(0, len(tenant_ids), 500):
        annotations = {
            name: Subquery(
                UsageSample.objects.filter(tenant=OuterRef("pk"), day__lt=before, **{f"{name}__isnull": False})
                .order_by("-day")
                .values(name)[:1]
            )
            for name in (*METRIC_FIELDS.values(), "offsite_bytes")
        }
        for row in (
            Tenant.objects.filter(pk__in=tenant_ids[i : i + 500])
            .annotate(**{f"carry_{k}": v for k, v in annotations.items()})
            .values("pk", *(f"carry_{k}" for k in annotations))
        ):
            out[row["pk"]] = {k: row[f"carry_{k}"] for k in annotations}
    return out


def _figures_stream(
    start: dt.date, end: dt.date, tenant_ids: Sequence[int] | None = None
) -> Iterator[tuple[int, dict[dt.date, _DayFigures]]]:
    """Yield (tenant_id, {day: figures}) in tenant id order, streaming the samples."""
    qs = UsageSample.objects.filter(day__gte=start, day__lte=end)
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    rows = qs.order_by("tenant_id", "day").values_list(
        "tenant_id", "day", "logical_bytes", "latest_bytes", "physical_estimate_bytes", "snapshot_count", "group_count",
        "offsite_bytes",
    )  # fmt: skip
    current: int | None = None
    bucket: dict[dt.date, _DayFigures] = {}
    for tenant_id, day, logical, latest, physical, snaps, groups, offsite in rows.iterator(chunk_size=5000):
        if tenant_id != current:
            if current is not None:
                yield current, bucket
            current, bucket = tenant_id, {}
        bucket[day] = _DayFigures(logical, latest, physical, snaps, groups, offsite)
    if current is not None:
        yield current, bucket


@dataclass
class CloseResult:
    period: BillingPeriod
    created: int
    already_closed: bool
    skipped_no_plan: list[str]
    totals: dict[str, str]


def billing_period_get_or_create(*, period: str) -> BillingPeriod:
    start, end = pricing.month_bounds(period)
    row, _ = BillingPeriod.objects.get_or_create(start=start, defaults={"end": end})
    return row


def billing_period_close(*, period: str, actor: Any = None, today: dt.date | None = None) -> CloseResult:
    """Close a month: one invoice per billable tenant, numbered, frozen. Idempotent.

    Steps: refuse a month that is not over; lock the period row (a second close waits, then
    finds it closed and does nothing); walk the billable tenants in id order beside the
    month's samples (streamed, so memory stays flat); price each tenant; number the
    invoices in tenant slug order; write invoices and lines in bulk; mark the period closed;
    audit. All in one transaction: a failure leaves the period open and nothing issued.
    """
    start, end = pricing.month_bounds(period)
    today = today or timezone.localdate()
    if end >= today:
        raise BillingError(f"{period} is not over yet; it can be closed from {end + dt.timedelta(days=1)} on")
    prefix = _setting("PORTAL_INVOICE_PREFIX", "INV-")
    with transaction.atomic():
        row = billing_period_get_or_create(period=period)
        row = BillingPeriod.objects.select_for_update().get(pk=row.pk)
        if row.status == BillingPeriod.Status.CLOSED:
            return CloseResult(
                row, 0, True, list(row.notes.get("skipped_no_plan", [])), dict(row.notes.get("totals", {}))
            )
        now = timezone.now()
        tenants = list(_billable_tenants(row).exclude(invoices__period=row).order_by("pk"))
        skipped = sorted(t.slug for t in tenants if t.plan_id is None)
        days_by_id = {t.pk: _tenant_days(t, row) for t in tenants if t.plan_id is not None}
        billable = [t for t in tenants if days_by_id.get(t.pk)]
        # Carry-ins only for tenants billed from the first of the month whose first day lacks a
        # sample; discovered while streaming, fetched afterwards in one go.
        drafts: dict[int, tuple[Tenant, dict[dt.date, _DayFigures]]] = {}
        stream = _figures_stream(start, end)
        pending = next(stream, None)
        for tenant in billable:
            while pending is not None and pending[0] < tenant.pk:
                pending = next(stream, None)
            figures: dict[dt.date, _DayFigures] = {}
            if pending is not None and pending[0] == tenant.pk:
                figures = pending[1]
                pending = next(stream, None)
            # Only the active days count; samples outside them are not billed.
            active = set(days_by_id[tenant.pk])
            drafts[tenant.pk] = (tenant, {d: f for d, f in figures.items() if d in active})
        need_carry = [pk for pk, (_, figs) in drafts.items() if days_by_id[pk][0] == start and start not in figs]
        carry = _carry_ins(need_carry, start)
        built: list[DraftInvoice] = []
        for pk, (tenant, figs) in drafts.items():
            plan = tenant.plan
            metric_field = METRIC_FIELDS[Plan.Metric(plan.metric)]
            built.append(
                _draft(
                    tenant=tenant,
                    plan=plan,
                    period=row,
                    days=days_by_id[pk],
                    figures=figs,
                    carry_in=carry.get(pk, {}).get(metric_field),
                    offsite_carry_in=carry.get(pk, {}).get("offsite_bytes"),
                    now=now,
                    actor=actor,
                )
            )
        built.sort(key=lambda d: d.invoice.tenant_slug)
        numbers = _allocate_numbers(prefix, now.year, len(built))
        for draft, number in zip(built, numbers, strict=True):
            draft.invoice.number = number
        Invoice.objects.bulk_create([d.invoice for d in built], batch_size=1000)
        lines = []
        for draft in built:
            for line in draft.lines:
                line.invoice = draft.invoice
                lines.append(line)
        InvoiceLine.objects.bulk_create(lines, batch_size=2000)
        totals: dict[str, Decimal] = {}
        for draft in built:
            totals[draft.invoice.currency] = totals.get(draft.invoice.currency, Decimal("0")) + draft.invoice.total
        totals_s = {cur: str(amount) for cur, amount in sorted(totals.items())}
        row.status = BillingPeriod.Status.CLOSED
        row.closed_at = now
        row.closed_by = actor if getattr(actor, "pk", None) else None
        row.notes = {"invoices": len(built), "skipped_no_plan": skipped, "totals": totals_s}
        row.save(update_fields=["status", "closed_at", "closed_by", "notes"])
        audit_record(
            action="billing.period_closed",
            actor=actor,
            target=period,
            detail={"invoices": len(built), "skipped_no_plan": len(skipped), "totals": totals_s},
        )
    return CloseResult(row, len(built), False, skipped, totals_s)


def _draft_for_tenant(
    *, tenant: Tenant, plan: Plan, period: BillingPeriod, now: dt.datetime, actor: Any
) -> DraftInvoice:
    days = _tenant_days(tenant, period)
    if not days:
        raise BillingError(f"{tenant.slug} was not active in {period.label}")
    figures: dict[dt.date, _DayFigures] = {}
    for _, figs in _figures_stream(days[0], days[-1], tenant_ids=[tenant.pk]):
        figures = figs
    metric_field = METRIC_FIELDS[Plan.Metric(plan.metric)]
    carry_in = offsite_carry_in = None
    if days[0] == period.start and period.start not in figures:
        carried = _carry_ins([tenant.pk], period.start).get(tenant.pk, {})
        carry_in, offsite_carry_in = carried.get(metric_field), carried.get("offsite_bytes")
    return _draft(
        tenant=tenant, plan=plan, period=period, days=days, figures=figures, carry_in=carry_in, now=now, actor=actor,
        offsite_carry_in=offsite_carry_in,
    )  # fmt: skip


def _save_draft(draft: DraftInvoice, number: str) -> Invoice:
    draft.invoice.number = number
    draft.invoice.save()
    for line in draft.lines:
        line.invoice = draft.invoice
    InvoiceLine.objects.bulk_create(draft.lines)
    return draft.invoice


def invoice_issue_late(*, tenant: Tenant, period: str, actor: Any) -> Invoice:
    """Bill a tenant the close skipped (it had no plan then) for an already closed month."""
    with transaction.atomic():
        row = BillingPeriod.objects.select_for_update().filter(start=pricing.month_bounds(period)[0]).first()
        if row is None or row.status != BillingPeriod.Status.CLOSED:
            raise BillingError(f"{period} is not closed; close it instead")
        if Invoice.objects.filter(tenant=tenant, period=row).exists():
            raise BillingError(f"{tenant.slug} already has an invoice for {period}; correct it instead")
        tenant = Tenant.objects.select_related("plan", "host", "datastore").get(pk=tenant.pk)
        if tenant.plan is None:
            raise BillingError(f"{tenant.slug} has no plan")
        now = timezone.now()
        draft = _draft_for_tenant(tenant=tenant, plan=tenant.plan, period=row, now=now, actor=actor)
        (number,) = _allocate_numbers(_setting("PORTAL_INVOICE_PREFIX", "INV-"), now.year, 1)
        invoice = _save_draft(draft, number)
        audit_record(
            action="billing.invoice_issued",
            actor=actor,
            tenant=tenant,
            target=invoice.number,
            detail={"period": period, "total": str(invoice.total), "currency": invoice.currency},
        )
    return invoice


# What a correction may change; identical on all of these means there is nothing to correct.
_COMPARED = (
    "client_name",
    "host_name",
    "datastore",
    "namespace",
    "plan_name",
    "metric",
    "currency",
    "included_gib",
    "unit_price",
    "base_fee",
    "minimum_charge",
    "first_day",
    "last_day",
    "active_days",
    "samples",
    "gaps",
    "avg_bytes",
    "billed_gib",
    "total",
)


@dataclass
class Correction:
    credit_note: CreditNote
    invoice: Invoice | None


def invoice_correct(
    *, invoice: Invoice, reason: str, actor: Any, plan: Plan | None = None, reissue: bool = True
) -> Correction:
    """Correct an issued invoice: a credit note for all of it, then (``reissue``) a new
    invoice computed afresh from the stored samples and the tenant's plan (or ``plan``).

    Refuses an invoice already credited, an empty reason, and a re-issue that would come
    out identical to the invoice it replaces (nothing to correct).
    """
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("a correction needs a reason")
    with transaction.atomic():
        original = Invoice.objects.select_for_update().select_related("period").get(pk=invoice.pk)
        if original.status != Invoice.Status.ISSUED:
            raise BillingError(f"{original.number} is already credited")
        now = timezone.now()
        draft = None
        if reissue:
            tenant = Tenant.objects.select_related("plan", "host", "datastore").get(pk=original.tenant_id)
            use_plan = plan or tenant.plan
            if use_plan is None:
                raise BillingError(f"{tenant.slug} has no plan; pass one")
            draft = _draft_for_tenant(tenant=tenant, plan=use_plan, period=original.period, now=now, actor=actor)
            if all(getattr(draft.invoice, f) == getattr(original, f) for f in _COMPARED):
                raise BillingError(
                    f"recomputing {original.number} gives the same invoice; fix the samples or plan first"
                )
        changed = Invoice.objects.filter(pk=original.pk, status=Invoice.Status.ISSUED).update(
            status=Invoice.Status.CREDITED
        )
        if changed != 1:
            raise BillingError(f"{original.number} was credited meanwhile")
        (cn_number,) = _allocate_numbers(_setting("PORTAL_CREDIT_NOTE_PREFIX", "CN-"), now.year, 1)
        credit = CreditNote.objects.create(
            number=cn_number,
            invoice=original,
            tenant_id=original.tenant_id,
            period=original.period,
            currency=original.currency,
            amount=original.total,
            reason=reason,
            issued_at=now,
            issued_by=actor if getattr(actor, "pk", None) else None,
        )
        new_invoice = None
        if draft is not None:
            draft.invoice.replaces = original
            draft.invoice.note = reason
            (number,) = _allocate_numbers(_setting("PORTAL_INVOICE_PREFIX", "INV-"), now.year, 1)
            new_invoice = _save_draft(draft, number)
        audit_record(
            action="billing.invoice_corrected",
            actor=actor,
            tenant=original.tenant,
            target=original.number,
            detail={
                "credit_note": credit.number,
                "credited": str(credit.amount),
                "new_invoice": new_invoice.number if new_invoice else "",
                "new_total": str(new_invoice.total) if new_invoice else "",
                "currency": original.currency,
                "reason": reason[:500],
            },
        )
    return Correction(credit_note=credit, invoice=new_invoice)


# --- plans -----------------------------------------------------------------------------


def plan_save(*, plan: Plan, actor: Any) -> Plan:
    """Create or update a plan (validated). Issued invoices keep the prices they had."""
    plan.full_clean()
    creating = plan.pk is None
    with transaction.atomic():
        plan.save()
        audit_record(
            action="billing.plan_created" if creating else "billing.plan_updated",
            actor=actor,
            target=plan.name,
            detail={
                "currency": plan.currency,
                "metric": plan.metric,
                "included_gib": str(plan.included_gib),
                "price_per_gib": str(plan.price_per_gib),
                "base_fee": str(plan.base_fee),
                "minimum_charge": str(plan.minimum_charge),
                "is_active": plan.is_active,
            },
        )
    return plan


# --- requests from the pages and the API (run on a worker) ------------------------------


def billing_period_close_request(*, period: str, actor: Any, today: dt.date | None = None) -> None:
    """Check the month can be closed, audit the request, and close it on a worker."""
    _, end = pricing.month_bounds(period)
    today = today or timezone.localdate()
    if end >= today:
        raise BillingError(f"{period} is not over yet")
    from billing.tasks import billing_close_period

    with transaction.atomic():
        audit_record(action="billing.close_requested", actor=actor, target=period)
        transaction.on_commit(lambda: billing_close_period.delay(period, getattr(actor, "pk", None)))


def metering_collect_request(*, actor: Any) -> None:
    """Start a collection for today on the workers (on demand, besides the daily schedule)."""
    from billing.tasks import metering_collect_all

    with transaction.atomic():
        audit_record(action="billing.metering_requested", actor=actor, target=str(timezone.localdate()))
        transaction.on_commit(lambda: metering_collect_all.delay(None, MeteringRun.Trigger.MANUAL))
