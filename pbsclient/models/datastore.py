"""Response models: datastores, groups, snapshots, usage, garbage collection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from pbsclient.models.base import _bool, _extra, _extra_field, _int, _obj, _opt_int, _opt_str, _str, _str_tuple


@dataclass(frozen=True)
class DatastoreListItem:
    """``GET /admin/datastore``: a datastore the caller can see."""

    store: str
    comment: str | None = None
    mount_status: str = "nonremovable"
    maintenance: str | None = None
    backend_type: str = "filesystem"
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"store", "comment", "mount-status", "maintenance", "backend-type"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            store=_str(d, "store"),
            comment=_opt_str(d, "comment"),
            mount_status=str(d.get("mount-status") or "nonremovable"),
            maintenance=None if d.get("maintenance") is None else str(d.get("maintenance")),
            backend_type=str(d.get("backend-type") or "filesystem"),
            extra=_extra(d, cls._KNOWN),
        )


@dataclass(frozen=True)
class GcStatus:
    """Garbage collection figures (``GET /admin/datastore/{store}/gc``, and nested in
    status/usage answers). ``dedup_factor`` is index_data_bytes / disk_bytes, as the
    PBS web UI shows it. Only as fresh as the last GC run."""

    store: str = ""
    upid: str | None = None
    index_file_count: int = 0
    index_data_bytes: int = 0
    disk_bytes: int = 0
    disk_chunks: int = 0
    removed_bytes: int = 0
    removed_chunks: int = 0
    pending_bytes: int = 0
    pending_chunks: int = 0
    removed_bad: int = 0
    still_bad: int = 0
    schedule: str | None = None
    next_run: int | None = None
    last_run_endtime: int | None = None
    last_run_state: str | None = None
    duration: int | None = None
    extra: Mapping[str, Any] = _extra_field()

    _INTS = (
        "index_file_count", "index_data_bytes", "disk_bytes", "disk_chunks", "removed_bytes",
        "removed_chunks", "pending_bytes", "pending_chunks", "removed_bad", "still_bad",
    )  # fmt: skip
    _KNOWN = frozenset(
        {
            "store",
            "upid",
            "schedule",
            "next-run",
            "last-run-endtime",
            "last-run-state",
            "duration",
            *(name.replace("_", "-") for name in _INTS),
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        counts = {name: _int(d, name.replace("_", "-"), 0) for name in cls._INTS}
        return cls(
            store=str(d.get("store") or ""),
            upid=_opt_str(d, "upid"),
            schedule=_opt_str(d, "schedule"),
            next_run=_opt_int(d, "next-run"),
            last_run_endtime=_opt_int(d, "last-run-endtime"),
            last_run_state=_opt_str(d, "last-run-state"),
            duration=_opt_int(d, "duration"),
            extra=_extra(d, cls._KNOWN),
            **counts,
        )

    @property
    def dedup_factor(self) -> float | None:
        if self.disk_bytes <= 0:
            return None
        return self.index_data_bytes / self.disk_bytes


@dataclass(frozen=True)
class BackupCounts:
    """Groups and snapshots of one backup type (``counts`` in verbose status)."""

    groups: int = 0
    snapshots: int = 0

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(groups=_int(d, "groups", 0), snapshots=_int(d, "snapshots", 0))


@dataclass(frozen=True)
class DatastoreStatus:
    """``GET /admin/datastore/{store}/status``. total/used/avail are file-system figures
    for the whole datastore (0 without Audit/Backup on the store itself). ``counts`` and
    ``gc_status`` only come with ``verbose=True`` (and enough rights)."""

    total: int
    used: int
    avail: int
    backend_type: str = "filesystem"
    counts: Mapping[str, BackupCounts] | None = field(default=None, compare=False)
    gc_status: GcStatus | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"total", "used", "avail", "backend-type", "counts", "gc-status"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        counts_raw = d.get("counts")
        counts = None
        if counts_raw is not None:
            counts = {kind: BackupCounts.from_api(value) for kind, value in _obj(counts_raw).items() if value}
        gc_raw = d.get("gc-status")
        return cls(
            total=_int(d, "total", 0),
            used=_int(d, "used", 0),
            avail=_int(d, "avail", 0),
            backend_type=str(d.get("backend-type") or "filesystem"),
            counts=counts,
            gc_status=GcStatus.from_api(gc_raw) if gc_raw else None,
            extra=_extra(d, cls._KNOWN),
        )


@dataclass(frozen=True)
class BackupGroup:
    """``GET /admin/datastore/{store}/groups``: one group (no size at group level)."""

    backup_type: str
    backup_id: str
    last_backup: int
    backup_count: int
    owner: str | None = None
    comment: str | None = None
    files: tuple[str, ...] = ()
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"backup-type", "backup-id", "last-backup", "backup-count", "owner", "comment", "files"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            backup_type=_str(d, "backup-type"),
            backup_id=_str(d, "backup-id"),
            last_backup=_int(d, "last-backup", 0),
            backup_count=_int(d, "backup-count", 0),
            owner=_opt_str(d, "owner"),
            comment=_opt_str(d, "comment"),
            files=_str_tuple(d, "files"),
            extra=_extra(d, cls._KNOWN),
        )


@dataclass(frozen=True)
class SnapshotFile:
    """One archive of a snapshot. PBS sends objects; the published schema says plain names,
    so both are accepted."""

    filename: str
    crypt_mode: str | None = None
    size: int | None = None

    @classmethod
    def from_api(cls, data: object) -> Self:
        if isinstance(data, str):
            return cls(filename=data)
        d = _obj(data)
        return cls(filename=_str(d, "filename"), crypt_mode=_opt_str(d, "crypt-mode"), size=_opt_int(d, "size"))


@dataclass(frozen=True)
class Snapshot:
    """``GET /admin/datastore/{store}/snapshots``: one snapshot.

    ``size`` is the *logical* size (sum of the manifest's file sizes, before
    chunking, compression and dedup); None for snapshots without a manifest.
    ``verification_state`` is "ok", "failed" or None (never verified).
    """

    backup_type: str
    backup_id: str
    backup_time: int
    size: int | None = None
    owner: str | None = None
    protected: bool = False
    verification_state: str | None = None
    verification_upid: str | None = None
    comment: str | None = None
    fingerprint: str | None = None
    files: tuple[SnapshotFile, ...] = ()
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "backup-type",
            "backup-id",
            "backup-time",
            "size",
            "owner",
            "protected",
            "verification",
            "comment",
            "fingerprint",
            "files",
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        verification = d.get("verification")
        state = upid = None
        if verification is not None and isinstance(verification, Mapping):
            state = _opt_str(verification, "state")
            upid = _opt_str(verification, "upid")
        return cls(
            backup_type=_str(d, "backup-type"),
            backup_id=_str(d, "backup-id"),
            backup_time=_int(d, "backup-time"),
            size=_opt_int(d, "size"),
            owner=_opt_str(d, "owner"),
            protected=_bool(d, "protected", False),
            verification_state=state,
            verification_upid=upid,
            comment=_opt_str(d, "comment"),
            fingerprint=_opt_str(d, "fingerprint"),
            files=tuple(SnapshotFile.from_api(f) for f in d.get("files") or ()),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def group(self) -> tuple[str, str]:
        return (self.backup_type, self.backup_id)


@dataclass(frozen=True)
class DatastoreUsage:
    """``GET /status/datastore-usage``: datastore-wide usage; figures are None where the
    caller only has namespace rights."""

    store: str
    total: int | None = None
    used: int | None = None
    avail: int | None = None
    mount_status: str = "nonremovable"
    backend_type: str = "filesystem"
    history: tuple[float | None, ...] = ()
    history_start: int | None = None
    history_delta: int | None = None
    estimated_full_date: int | None = None
    error: str | None = None
    gc_status: GcStatus | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "store",
            "total",
            "used",
            "avail",
            "mount-status",
            "backend-type",
            "history",
            "history-start",
            "history-delta",
            "estimated-full-date",
            "error",
            "gc-status",
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        history_raw = d.get("history") or ()
        history = tuple(None if v is None else float(v) for v in history_raw)
        gc_raw = d.get("gc-status")
        return cls(
            store=_str(d, "store"),
            total=_opt_int(d, "total"),
            used=_opt_int(d, "used"),
            avail=_opt_int(d, "avail"),
            mount_status=str(d.get("mount-status") or "nonremovable"),
            backend_type=str(d.get("backend-type") or "filesystem"),
            history=history,
            history_start=_opt_int(d, "history-start"),
            history_delta=_opt_int(d, "history-delta"),
            estimated_full_date=_opt_int(d, "estimated-full-date"),
            error=_opt_str(d, "error"),
            gc_status=GcStatus.from_api(gc_raw) if gc_raw else None,
            extra=_extra(d, cls._KNOWN),
        )
