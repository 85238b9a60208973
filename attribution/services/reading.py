"""Reading snapshots from PBS: the listing of a datastore and one snapshot's chunk list.

No database here: the run service (``attribution.services.runs``) decides what to read and
stores it. Chunk sizes are uncompressed (what the indexes record).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pbsclient.backup_format import BackupFormatError, ChunkRefs
from pbsclient.errors import NotFound, PbsHttpError, PermissionDenied
from pbsclient.validation import MAX_NAMESPACE_DEPTH

# (host, store=, ns=, backup_type=, backup_id=, backup_time=) -> an open pbsclient ReaderSession
ReaderFactory = Callable[..., Any]


@dataclass(frozen=True, order=True)
class SnapshotKey:
    """A snapshot as PBS names it within one datastore."""

    namespace: str
    backup_type: str
    backup_id: str
    backup_time: int


@dataclass(frozen=True)
class Listing:
    """Every finished snapshot of a datastore, and the GC figures of its last run."""

    snapshots: list[SnapshotKey]
    gc_disk_bytes: int | None
    gc_time: int | None  # epoch of the last GC's end
    requests: int


@dataclass(frozen=True)
class SnapshotChunks:
    """One snapshot's distinct chunks (sorted keys, sizes) and what reading them cost."""

    digests: np.ndarray  # uint64, sorted, unique
    sizes: np.ndarray  # uint32, uncompressed
    chunk_refs: int  # every reference, repeats included
    logical_bytes: int  # their sizes summed
    requests: int  # the session's upgrade request plus each download
    bytes_downloaded: int
    index_files: int


class SnapshotGone(Exception):
    """The snapshot was removed between the listing and the read (pruned)."""


def datastore_listing(client: Any, *, store: str) -> Listing:
    """List every namespace of ``store``, then the snapshots of each (PBS's listings are not
    recursive), plus the GC status. Snapshots without a manifest (``size`` None: a backup
    still running, or a broken one) are left out: there is nothing to read yet."""
    before = client.stats.requests
    namespaces = client.namespace_list(store, max_depth=MAX_NAMESPACE_DEPTH)
    names = sorted({"", *(item.ns for item in namespaces)})
    snapshots: list[SnapshotKey] = []
    for ns in names:
        for snap in client.snapshot_list(store, ns=ns or None):
            if snap.size is not None:
                snapshots.append(SnapshotKey(ns, snap.backup_type, snap.backup_id, int(snap.backup_time)))
    disk_bytes = gc_time = None
    try:
        gc = client.gc_status(store)
    except (PermissionDenied, NotFound):
        gc = None  # no Datastore.Audit on the store: no physical scaling, the shares stand
    if gc is not None and gc.disk_bytes > 0:
        disk_bytes, gc_time = gc.disk_bytes, gc.last_run_endtime
    return Listing(sorted(snapshots), disk_bytes, gc_time, client.stats.requests - before)


def snapshot_chunks(reader_factory: ReaderFactory, host: Any, *, store: str, key: SnapshotKey) -> SnapshotChunks:
    """Read one snapshot: open a reader session, fetch the manifest, then each index it lists.

    Each index is checked against the manifest's size and SHA-256 (what the backup client
    checks too). Raises ``SnapshotGone`` when PBS no longer has the snapshot, PBS errors
    (``PermissionDenied`` when the credential may not read) and ``BackupFormatError``.
    """
    try:
        session = reader_factory(
            host,
            store=store,
            ns=key.namespace,
            backup_type=key.backup_type,
            backup_id=key.backup_id,
            backup_time=key.backup_time,
        )
    except NotFound as exc:
        raise SnapshotGone(str(exc)) from None
    except PermissionDenied:
        raise
    except PbsHttpError as exc:
        # src/api2/reader/mod.rs answers a missing snapshot with 400 "snapshot ... does not exist."
        if exc.status == 400 and "does not exist" in exc.message:
            raise SnapshotGone(exc.message) from None
        raise
    with session:
        manifest = session.manifest()
        parts: list[ChunkRefs] = []
        for entry in manifest.index_files():
            index = session.index(entry.filename)
            if index.index_csum != entry.csum or index.size != entry.size:
                raise BackupFormatError(
                    f"{entry.filename} does not match the manifest (checksum or size)", what=entry.filename
                )
            parts.append(index.compact())
        refs = ChunkRefs.concat(parts)
        distinct = refs.distinct()
        return SnapshotChunks(
            digests=np.ascontiguousarray(distinct.keys, dtype=np.uint64),
            sizes=np.ascontiguousarray(distinct.sizes, dtype=np.uint32),
            chunk_refs=len(refs),
            logical_bytes=refs.total_bytes(),
            requests=session.requests + 1,
            bytes_downloaded=session.bytes_downloaded,
            index_files=len(parts),
        )
