"""The daily attribution run of one datastore: read what is new, drop what vanished, split.

Steps (``attribution_collect``):

1. take the day's run row for the host and datastore (a finished one is returned as it is;
   an unfinished one, from a worker that died or a failure, is resumed);
2. list every namespace and its snapshots, and the GC status, with the metering credential;
3. delete the stored indexes of snapshots PBS no longer lists;
4. read each snapshot not stored yet through the reader protocol (manifest, then each index)
   and store its compact chunk list at once, so an interrupted run continues where it
   stopped; the run's counters move after each snapshot (a page can poll them);
5. split the datastore's distinct chunk bytes among its tenants and store their rows and the
   run's totals in one transaction.

A credential that may not read (PBS refuses the reader session) ends the run with method
"estimate" and the reason, logged: the portal keeps billing the estimate for that host.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from attribution.models import AttributionRun, SnapshotIndex
from attribution.services.reading import (
    ReaderFactory,
    SnapshotChunks,
    SnapshotGone,
    SnapshotKey,
    datastore_listing,
    snapshot_chunks,
)
from attribution.services.splitting import OTHERS, datastore_attribution, datastore_tenants, tenant_rows_write
from pbsclient.backup_format import BackupFormatError
from pbsclient.errors import PbsError, PermissionDenied
from tenants.models import Datastore, PbsHost
from tenants.pbs import client_for_host, reader_for_host

logger = logging.getLogger(__name__)

ClientFactory = Callable[[PbsHost], Any]


def _default_client_factory(host: PbsHost) -> Any:
    # The metering credential (tenants.pbs falls back to the automation token without one).
    return client_for_host(host, purpose="metering")


def _default_reader_factory(host: PbsHost, **snapshot: Any) -> Any:
    return reader_for_host(host, purpose="metering", **snapshot)


def attribution_targets() -> list[tuple[int, str]]:
    """(host id, datastore name) of every datastore of an enabled host, in a stable order."""
    return list(
        Datastore.objects.filter(host__enabled=True).order_by("host_id", "name").values_list("host_id", "name")
    )


def _run_for_day(host: PbsHost, store: str, day: dt.date) -> AttributionRun:
    """The day's run row: created, or an unfinished one taken up again (a finished one as it is).

    Runs of earlier days still marked running lost their worker: they are marked failed.
    """
    AttributionRun.objects.filter(
        host=host, datastore=store, status=AttributionRun.Status.RUNNING, day__lt=day
    ).update(status=AttributionRun.Status.FAILED, error="never finished (worker lost)", finished_at=timezone.now())
    with transaction.atomic():
        run = (
            AttributionRun.objects.select_for_update()
            .filter(host=host, datastore=store, day=day)
            .order_by("-started_at", "-id")
            .first()
        )
        if run is None:
            return AttributionRun.objects.create(host=host, datastore=store, day=day)
        if run.status != AttributionRun.Status.DONE:
            run.status, run.error, run.finished_at = AttributionRun.Status.RUNNING, "", None
            run.method = AttributionRun.Method.EXACT
            run.save(update_fields=["status", "error", "finished_at", "method"])
        return run


def _finish(run: AttributionRun, *, status: str, error: str = "", method: str | None = None) -> None:
    run.status, run.error, run.finished_at = status, error, timezone.now()
    if method is not None:
        run.method = method
    run.save(update_fields=["status", "error", "finished_at", "method"])


def _count(run: AttributionRun, **deltas: int) -> None:
    AttributionRun.objects.filter(pk=run.pk).update(**{name: F(name) + delta for name, delta in deltas.items()})
    for name, delta in deltas.items():
        setattr(run, name, getattr(run, name) + delta)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 500 else text[:500] + " [...]"


def _denied_text(host: PbsHost, store: str, exc: PbsError) -> str:
    token = host.metering_token_id or host.token_id
    return (
        f"The metering credential {token} may not read snapshots on datastore '{store}' "
        f"(PBS: {_describe(exc)}). Chunk-exact figures need Datastore.Read (role DatastoreReader) "
        f"on /datastore/{store}; until then this datastore keeps the physical estimate."
    )


def attribution_collect(
    *,
    host_id: int,
    datastore: str,
    day: dt.date | None = None,
    client_factory: ClientFactory | None = None,
    reader_factory: ReaderFactory | None = None,
) -> AttributionRun | None:
    """Run (or resume) the day's attribution of one datastore; see the module docstring.

    Returns the run, or None when the host no longer exists (a task enqueued before it was removed).
    """
    host = PbsHost.objects.filter(pk=host_id).first()
    if host is None:
        return None
    run = _run_for_day(host, datastore, day or timezone.localdate())
    if run.status == AttributionRun.Status.DONE:
        return run
    try:
        return _collect(run, host, client_factory or _default_client_factory, reader_factory or _default_reader_factory)
    except PermissionDenied as exc:
        error = _denied_text(host, datastore, exc)
        logger.warning("attribution of %s/%s stays an estimate: %s", host.name, datastore, error)
        _finish(run, status=AttributionRun.Status.DONE, error=error, method=AttributionRun.Method.ESTIMATE)
        return run
    except (PbsError, BackupFormatError) as exc:
        logger.warning("attribution of %s/%s failed: %s", host.name, datastore, _describe(exc))
        _finish(run, status=AttributionRun.Status.FAILED, error=_describe(exc))
        raise
    except Exception as exc:
        logger.exception("attribution of %s/%s failed", host.name, datastore)
        _finish(run, status=AttributionRun.Status.FAILED, error=f"unexpected error: {_describe(exc)}")
        raise


def _collect(
    run: AttributionRun, host: PbsHost, client_factory: ClientFactory, reader_factory: ReaderFactory
) -> AttributionRun:
    store = run.datastore
    with client_factory(host) as client:
        listing = datastore_listing(client, store=store)
    listed = set(listing.snapshots)
    stored = {
        SnapshotKey(*values[1:]): values[0]
        for values in SnapshotIndex.objects.filter(host=host, datastore=store).values_list(
            "id", "namespace", "backup_type", "backup_id", "backup_time"
        )
    }
    vanished = [pk for key, pk in stored.items() if key not in listed]
    new = [key for key in listing.snapshots if key not in stored]
    for start in range(0, len(vanished), 500):  # bounded IN lists (a big prune drops thousands)
        SnapshotIndex.objects.filter(pk__in=vanished[start : start + 500]).delete()
    AttributionRun.objects.filter(pk=run.pk).update(
        snapshots_listed=len(listed), snapshots_new=len(new), snapshots_read=0, snapshots_dropped=len(vanished)
    )
    run.snapshots_listed, run.snapshots_new, run.snapshots_read = len(listed), len(new), 0
    run.snapshots_dropped = len(vanished)
    _count(run, requests=listing.requests)

    for key in new:
        try:
            chunks = snapshot_chunks(reader_factory, host, store=store, key=key)
        except SnapshotGone as exc:
            logger.info("snapshot %s on %s/%s vanished before it was read: %s", key, host.name, store, exc)
            _count(run, requests=1)
            continue
        # One commit per snapshot: the index and the run's counters move together.
        with transaction.atomic():
            _store_snapshot(run, host, key, chunks)
    _split(run, host, gc_disk_bytes=listing.gc_disk_bytes, gc_time=listing.gc_time)
    logger.info(
        "attribution of %s/%s: %d snapshots, %d new, %d dropped, %d requests, %d bytes downloaded",
        host.name, store, len(listed), len(new), len(vanished), run.requests, run.bytes_downloaded,
    )  # fmt: skip
    return run


def _store_snapshot(run: AttributionRun, host: PbsHost, key: SnapshotKey, chunks: SnapshotChunks) -> None:
    # ignore_conflicts: another worker stored it meanwhile (the same content: snapshots are immutable)
    SnapshotIndex.objects.bulk_create(
        [
            SnapshotIndex(
                host=host,
                datastore=run.datastore,
                namespace=key.namespace,
                backup_type=key.backup_type,
                backup_id=key.backup_id,
                backup_time=key.backup_time,
                digests=chunks.digests.astype("<u8").tobytes(),
                sizes=chunks.sizes.astype("<u4").tobytes(),
                chunk_refs=chunks.chunk_refs,
                logical_bytes=chunks.logical_bytes,
                requests=chunks.requests,
                bytes_downloaded=chunks.bytes_downloaded,
            )
        ],
        ignore_conflicts=True,
    )
    _count(run, snapshots_read=1, requests=chunks.requests, bytes_downloaded=chunks.bytes_downloaded)


def _split(run: AttributionRun, host: PbsHost, *, gc_disk_bytes: int | None, gc_time: int | None) -> None:
    """Attribute the stored indexes and store the tenant rows and the run's totals in one transaction."""
    tenants = datastore_tenants(host_id=host.pk, store=run.datastore)
    result = datastore_attribution(host_id=host.pk, store=run.datastore, tenants=tenants)
    gc_at = dt.datetime.fromtimestamp(gc_time, tz=dt.UTC) if gc_time else None
    others = result.figures.get(OTHERS)
    with transaction.atomic():
        run.distinct_chunks, run.distinct_bytes = result.distinct_chunks, result.distinct_bytes
        run.gc_disk_bytes, run.gc_time = gc_disk_bytes, gc_at
        run.others_share_bytes = others.share if others is not None else 0
        run.save(update_fields=["distinct_chunks", "distinct_bytes", "gc_disk_bytes", "gc_time", "others_share_bytes"])
        tenant_rows_write(run=run, result=result, tenants=tenants, gc_time=gc_at)
        _finish(run, status=AttributionRun.Status.DONE, method=AttributionRun.Method.EXACT)
