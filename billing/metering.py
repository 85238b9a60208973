"""Measuring tenants on PBS: the async part of metering, without the database.

PBS has no per-namespace size, so for each tenant the portal walks its namespace
tree and lists the snapshots of every namespace in it (the listings are not
recursive). Steps for one host job (``collect_hosts``):

1. Per datastore, read the GC status (the disk/index ratio for the physical
   estimate). A connection failure or 5xx here means the host is down: the whole
   attempt fails fast instead of timing out once per tenant.
2. Per tenant, concurrently but never more requests in flight than the host's
   connection limit: list the namespaces below the tenant's namespace, then the
   snapshots of each, and reduce them to one ``Measurement``.
3. Tenants that failed with a transient error (connection, 5xx) are tried again
   after a back-off, up to ``attempts`` times; if the host goes away mid-way the
   attempt stops early. What still fails is reported as a ``Failure``: the caller
   records a gap. Nothing is ever estimated for a tenant that was not measured.

This module imports nothing from Django so it runs inside ``asyncio.run`` freely.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pbsclient.errors import NotFound, PbsConnectionError, PbsError, PbsHttpError, PermissionDenied, ServerError

MAX_NAMESPACE_DEPTH = 7


@dataclass(frozen=True)
class TenantTarget:
    tenant_id: int
    store: str
    namespace: str


@dataclass(frozen=True)
class GcFigures:
    index_data_bytes: int | None
    disk_bytes: int | None
    source: str  # "live" (read now), "cached" (the datastore row's last figures) or ""


@dataclass(frozen=True)
class Measurement:
    tenant_id: int
    store: str
    namespace: str
    logical_bytes: int
    latest_bytes: int
    physical_estimate_bytes: int | None
    snapshot_count: int
    unsized_snapshot_count: int
    group_count: int
    namespace_count: int
    newest_backup_at: dt.datetime | None
    oldest_backup_at: dt.datetime | None
    gc: GcFigures


@dataclass(frozen=True)
class Failure:
    tenant_id: int
    reason: str
    transient: bool


@dataclass
class HostJob:
    """One host (or one chunk of its tenants) to measure. ``client_factory`` builds a fresh
    AsyncPbsClient (metering token if configured) used as an async context manager."""

    key: Any
    host_name: str
    client_factory: Callable[[], Any]
    targets: Sequence[TenantTarget]
    max_in_flight: int = 8
    cached_gc: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)


@dataclass
class HostOutcome:
    key: Any
    host_name: str
    measurements: list[Measurement] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    attempts: int = 0
    requests: int = 0
    error: str = ""
    duration_s: float = 0.0


class _HostDown(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def physical_estimate(logical: int, index_data_bytes: int | None, disk_bytes: int | None) -> int | None:
    """``logical x disk / index-data``, half-up to whole bytes; None without usable GC figures."""
    if not index_data_bytes or disk_bytes is None or index_data_bytes <= 0:
        return None
    return (logical * disk_bytes * 2 + index_data_bytes) // (2 * index_data_bytes)


def _epoch(value: int | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value, tz=dt.UTC)


def reduce_snapshots(target: TenantTarget, per_namespace: dict[str, list[Any]], gc: GcFigures) -> Measurement:
    """Turn the snapshot listings of a tenant's namespaces into one measurement.

    A snapshot without ``size`` (backup running, or no manifest) adds 0 bytes and is counted
    in ``unsized_snapshot_count``. A group's latest size is its newest snapshot that has one.
    Groups are told apart by namespace, type and id.
    """
    logical = 0
    unsized = 0
    count = 0
    newest: int | None = None
    oldest: int | None = None
    latest_per_group: dict[tuple[str, str, str], tuple[int, int]] = {}
    groups: set[tuple[str, str, str]] = set()
    for ns, snapshots in per_namespace.items():
        for snap in snapshots:
            count += 1
            key = (ns, snap.backup_type, snap.backup_id)
            groups.add(key)
            when = int(snap.backup_time)
            newest = when if newest is None else max(newest, when)
            oldest = when if oldest is None else min(oldest, when)
            if snap.size is None:
                unsized += 1
                continue
            size = int(snap.size)
            logical += size
            seen = latest_per_group.get(key)
            if seen is None or when > seen[0]:
                latest_per_group[key] = (when, size)
    latest = sum(size for _, size in latest_per_group.values())
    return Measurement(
        tenant_id=target.tenant_id,
        store=target.store,
        namespace=target.namespace,
        logical_bytes=logical,
        latest_bytes=latest,
        physical_estimate_bytes=physical_estimate(logical, gc.index_data_bytes, gc.disk_bytes),
        snapshot_count=count,
        unsized_snapshot_count=unsized,
        group_count=len(groups),
        namespace_count=len(per_namespace),
        newest_backup_at=_epoch(newest),
        oldest_backup_at=_epoch(oldest),
        gc=gc,
    )


def _is_host_level(exc: BaseException) -> bool:
    """Errors that say the host (not the tenant) is in trouble: worth retrying later."""
    return isinstance(exc, PbsConnectionError | ServerError)


class _HostCollector:
    def __init__(self, job: HostJob, client: Any) -> None:
        self.job = job
        self.client = client
        self.sem = asyncio.Semaphore(max(1, job.max_in_flight))
        self.requests = 0
        self.down: _HostDown | None = None

    async def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        if self.down is not None:
            raise self.down
        async with self.sem:
            if self.down is not None:
                raise self.down
            self.requests += 1
            try:
                return await fn(*args, **kwargs)
            except PbsConnectionError as exc:
                # The host went away: stop sending; the rest of this attempt fails fast.
                self.down = _HostDown(f"host unreachable: {exc}")
                raise

    async def gc_for(self, store: str) -> GcFigures:
        try:
            status = await self.call(self.client.gc_status, store)
        except (PermissionDenied, NotFound):
            # A metering token without Datastore.Audit on the store: use the last known figures.
            cached = self.job.cached_gc.get(store)
            if cached and cached[0]:
                return GcFigures(cached[0], cached[1], "cached")
            return GcFigures(None, None, "")
        index = getattr(status, "index_data_bytes", None)
        disk = getattr(status, "disk_bytes", None)
        if not index:
            cached = self.job.cached_gc.get(store)
            if cached and cached[0]:
                return GcFigures(cached[0], cached[1], "cached")
            return GcFigures(None, None, "")
        return GcFigures(int(index), None if disk is None else int(disk), "live")

    async def measure(self, target: TenantTarget, gc: GcFigures) -> Measurement | Failure:
        depth = target.namespace.count("/") + 1 if target.namespace else 0
        try:
            namespaces = await self.call(
                self.client.namespace_list,
                target.store,
                parent=target.namespace or None,
                max_depth=max(0, MAX_NAMESPACE_DEPTH - depth),
            )
            names = [target.namespace]
            names += [n.ns for n in namespaces if n.ns != target.namespace]
            listings = await asyncio.gather(
                *(self.call(self.client.snapshot_list, target.store, ns=ns or None) for ns in names)
            )
        except _HostDown as down:
            return Failure(target.tenant_id, down.reason, transient=True)
        except (NotFound, PbsHttpError) as exc:
            if isinstance(exc, NotFound) or "ENOENT" in exc.message:
                # PBS answers a listing of a missing namespace with 400 "ENOENT: No such file".
                reason = f"namespace {target.namespace!r} not found on datastore {target.store!r}: {_describe(exc)}"
                return Failure(target.tenant_id, reason, transient=False)
            return Failure(target.tenant_id, _describe(exc), transient=_is_host_level(exc))
        except PbsError as exc:
            return Failure(target.tenant_id, _describe(exc), transient=_is_host_level(exc))
        return reduce_snapshots(target, dict(zip(names, listings, strict=True)), gc)

    async def attempt(self, targets: Sequence[TenantTarget]) -> list[Measurement | Failure]:
        self.down = None
        gc_by_store: dict[str, GcFigures] = {}
        for store in sorted({t.store for t in targets}):
            try:
                gc_by_store[store] = await self.gc_for(store)
            except PbsError as exc:
                if _is_host_level(exc):
                    reason = self.down.reason if self.down else f"host failed: {_describe(exc)}"
                    return [Failure(t.tenant_id, reason, transient=True) for t in targets]
                raise
        return list(await asyncio.gather(*(self.measure(t, gc_by_store[t.store]) for t in targets)))


def _describe(exc: PbsError) -> str:
    text = str(exc)
    return text if len(text) <= 500 else text[:500] + " [...]"


async def collect_host(job: HostJob, *, attempts: int = 3, retry_delay_s: float = 5.0) -> HostOutcome:
    """Measure every target of ``job``; see the module docstring for the steps."""
    started = time.monotonic()
    outcome = HostOutcome(key=job.key, host_name=job.host_name)
    pending: list[TenantTarget] = list(job.targets)
    by_id = {t.tenant_id: t for t in pending}
    last_failures: dict[int, Failure] = {}
    for attempt in range(1, max(1, attempts) + 1):
        outcome.attempts = attempt
        try:
            async with job.client_factory() as client:
                collector = _HostCollector(job, client)
                try:
                    results = await collector.attempt(pending)
                finally:
                    # HTTP attempts as the client counted them (its own retries included).
                    stats = getattr(client, "stats", None)
                    outcome.requests += getattr(stats, "requests", collector.requests)
        except PbsError as exc:  # building or closing the client failed
            results = [Failure(t.tenant_id, _describe(exc), transient=_is_host_level(exc)) for t in pending]
        retry: list[TenantTarget] = []
        for result in results:
            if isinstance(result, Measurement):
                outcome.measurements.append(result)
                last_failures.pop(result.tenant_id, None)
            else:
                last_failures[result.tenant_id] = result
                if result.transient:
                    retry.append(by_id[result.tenant_id])
        if not retry or attempt == attempts:
            break
        pending = retry
        await asyncio.sleep(retry_delay_s * attempt)
    outcome.failures = list(last_failures.values())
    if outcome.failures and not outcome.measurements:
        outcome.error = outcome.failures[0].reason
    elif outcome.failures:
        outcome.error = f"{len(outcome.failures)} tenant(s) failed, e.g. {outcome.failures[0].reason}"
    outcome.duration_s = time.monotonic() - started
    return outcome


async def collect_hosts(jobs: Sequence[HostJob], *, attempts: int = 3, retry_delay_s: float = 5.0) -> list[HostOutcome]:
    """Run several host jobs at once (each bounded by its own connection limit)."""
    return list(
        await asyncio.gather(*(collect_host(job, attempts=attempts, retry_delay_s=retry_delay_s) for job in jobs))
    )
