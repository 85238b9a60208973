"""PBS responses, typed at the boundary.

Each model is a frozen dataclass with snake_case fields, built from PBS's
kebab-case JSON by ``from_api``. Parsing is tolerant: fields PBS leaves out
get their documented default (PBS omits unset fields, e.g. a missing
``enable`` means enabled), and fields this client does not know yet are
kept in ``extra`` (excluded from equality) instead of failing.

A response that lacks a field PBS always sends raises ``KeyError`` /
``TypeError`` / ``ValueError``; the client turns that into a ``PbsHttpError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

__all__ = [
    "AclEntry",
    "BackupCounts",
    "BackupGroup",
    "CertificateInfo",
    "DatastoreListItem",
    "DatastoreStatus",
    "DatastoreUsage",
    "GcStatus",
    "Namespace",
    "PruneJob",
    "PruneJobStatus",
    "Remote",
    "Snapshot",
    "SnapshotFile",
    "SyncJob",
    "SyncJobStatus",
    "Token",
    "TokenSecret",
    "User",
    "VersionInfo",
]

Json = Mapping[str, Any]


# --- small typed readers -------------------------------------------------------------


def _obj(data: object) -> Json:
    if type(data) is dict:  # fast path: what json.loads produces (ABC checks are slow)
        return data
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _str(data: Json, key: str) -> str:
    value = data[key]
    if type(value) is not str:
        raise TypeError(f"'{key}' should be a string, got {type(value).__name__}")
    return value


def _opt_str(data: Json, key: str) -> str | None:
    value = data.get(key)
    if value is None or type(value) is str:
        return value
    if not isinstance(value, str):
        raise TypeError(f"'{key}' should be a string, got {type(value).__name__}")
    return value


def _int(data: Json, key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if type(value) is int:
        return value
    if value is None:
        raise KeyError(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"'{key}' should be an integer, got {type(value).__name__}")
    return int(value)


def _opt_int(data: Json, key: str) -> int | None:
    value = data.get(key)
    if value is None or type(value) is int:
        return value
    return _int(data, key)


def _bool(data: Json, key: str, default: bool) -> bool:
    """PBS sends JSON booleans; older configs may carry 0/1 or "1"/"true"."""
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
        return value.lower() in {"1", "true", "yes", "on"}
    raise TypeError(f"'{key}' should be a boolean, got {value!r}")


def _str_tuple(data: Json, key: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):  # a single value where PBS usually sends a list
        return (value,)
    if not isinstance(value, list):
        raise TypeError(f"'{key}' should be a list, got {type(value).__name__}")
    return tuple(str(item) for item in value)


def _expire(data: Json) -> int | None:
    """PBS: missing or 0 = never expires. We return None for "never"."""
    value = _opt_int(data, "expire")
    return value or None


def _extra(data: Json, known: frozenset[str]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in known}


def _extra_field() -> Any:
    return field(default_factory=dict, compare=False, repr=False)


# --- version --------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionInfo:
    """``GET /version``: e.g. version "4.2", release "3"."""

    version: str
    release: str
    repoid: str
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"version", "release", "repoid"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            version=_str(d, "version"),
            release=str(d.get("release", "")),
            repoid=str(d.get("repoid", "")),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """(major, minor, release) as integers, for feature gates; non-numeric parts are 0."""
        parts = [*self.version.split("."), self.release]
        return tuple(int(part) if part.isdigit() else 0 for part in parts if part != "")


# --- users and tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """An API token's metadata (its secret is never readable)."""

    tokenid: str
    token_name: str
    comment: str | None = None
    enable: bool = True
    expire: int | None = None  # epoch; None = never
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"tokenid", "token-name", "comment", "enable", "expire"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        tokenid = _str(d, "tokenid")
        return cls(
            tokenid=tokenid,
            token_name=_opt_str(d, "token-name") or tokenid.rsplit("!", 1)[-1],
            comment=_opt_str(d, "comment"),
            enable=_bool(d, "enable", True),
            expire=_expire(d),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def userid(self) -> str:
        return self.tokenid.rsplit("!", 1)[0]


@dataclass(frozen=True)
class TokenSecret:
    """A new token's id and secret, as ``POST .../token/{name}`` returns it (once)."""

    tokenid: str
    value: str = field(repr=False)

    def __repr__(self) -> str:  # the secret must never reach logs or tracebacks
        return f"TokenSecret(tokenid={self.tokenid!r}, value='***')"

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(tokenid=_str(d, "tokenid"), value=_str(d, "value"))


@dataclass(frozen=True)
class User:
    """A PBS user. ``tokens`` is filled only by ``user_list(include_tokens=True)``."""

    userid: str
    comment: str | None = None
    enable: bool = True
    expire: int | None = None  # epoch; None = never
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    tokens: tuple[Token, ...] = ()
    totp_locked: bool = False
    tfa_locked_until: int | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "userid",
            "comment",
            "enable",
            "expire",
            "firstname",
            "lastname",
            "email",
            "tokens",
            "totp-locked",
            "tfa-locked-until",
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            userid=_str(d, "userid"),
            comment=_opt_str(d, "comment"),
            enable=_bool(d, "enable", True),
            expire=_expire(d),
            firstname=_opt_str(d, "firstname"),
            lastname=_opt_str(d, "lastname"),
            email=_opt_str(d, "email"),
            tokens=tuple(Token.from_api(t) for t in d.get("tokens") or ()),
            totp_locked=_bool(d, "totp-locked", False),
            tfa_locked_until=_opt_int(d, "tfa-locked-until"),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def realm(self) -> str:
        return self.userid.rsplit("@", 1)[-1]


# --- ACL ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AclEntry:
    """One ACL entry. ``ugid`` is a user id, token id or group; ``ugid_type`` is
    "user" for users and tokens alike, "group" for groups."""

    path: str
    ugid: str
    ugid_type: str
    propagate: bool
    roleid: str
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"path", "ugid", "ugid_type", "propagate", "roleid"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            path=_str(d, "path"),
            ugid=_str(d, "ugid"),
            ugid_type=str(d.get("ugid_type", "user")),
            propagate=_bool(d, "propagate", True),
            roleid=_str(d, "roleid"),
            extra=_extra(d, cls._KNOWN),
        )

    @property
    def is_token(self) -> bool:
        return "!" in self.ugid


# --- namespaces, prune jobs ----------------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    """A namespace in a datastore; ``ns`` is "" for the root."""

    ns: str
    comment: str | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"ns", "comment"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(ns=str(d.get("ns", "")), comment=_opt_str(d, "comment"), extra=_extra(d, cls._KNOWN))

    @property
    def depth(self) -> int:
        return 0 if self.ns == "" else self.ns.count("/") + 1


_KEEP_FIELDS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")


@dataclass(frozen=True)
class PruneJob:
    """A prune job: retention for (store, ns) down to max_depth (None = full recursion).

    Used both as ``prune_job_create`` input and as what PBS returns. A job with
    no keep-* set keeps everything.
    """

    id: str
    store: str
    schedule: str
    ns: str | None = None
    max_depth: int | None = None
    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    comment: str | None = None
    disable: bool = False
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "id",
            "store",
            "schedule",
            "ns",
            "max-depth",
            "comment",
            "disable",
            *(name.replace("_", "-") for name in _KEEP_FIELDS),
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            id=_str(d, "id"),
            store=_str(d, "store"),
            schedule=_str(d, "schedule"),
            ns=_opt_str(d, "ns"),
            max_depth=_opt_int(d, "max-depth"),
            keep_last=_opt_int(d, "keep-last"),
            keep_hourly=_opt_int(d, "keep-hourly"),
            keep_daily=_opt_int(d, "keep-daily"),
            keep_weekly=_opt_int(d, "keep-weekly"),
            keep_monthly=_opt_int(d, "keep-monthly"),
            keep_yearly=_opt_int(d, "keep-yearly"),
            comment=_opt_str(d, "comment"),
            disable=_bool(d, "disable", False),
            extra=_extra(d, cls._KNOWN),
        )

    def to_api(self) -> dict[str, Any]:
        """Parameters for ``POST /config/prune`` (unset fields left out)."""
        params: dict[str, Any] = {"id": self.id, "store": self.store, "schedule": self.schedule}
        if self.ns:  # "" is the root namespace, which is PBS's default
            params["ns"] = self.ns
        if self.max_depth is not None:
            params["max-depth"] = self.max_depth
        for name in _KEEP_FIELDS:
            value = getattr(self, name)
            if value is not None:
                params[name.replace("_", "-")] = value
        if self.comment is not None:
            params["comment"] = self.comment
        if self.disable:
            params["disable"] = True
        return params

    @property
    def keep(self) -> dict[str, int]:
        """The keep-* options that are set, snake_case keys."""
        return {name: getattr(self, name) for name in _KEEP_FIELDS if getattr(self, name) is not None}


# --- datastores, groups, snapshots -------------------------------------------------------------


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


# --- certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateInfo:
    """``GET /nodes/{node}/certificates/info``: one certificate file of the node."""

    filename: str
    fingerprint: str | None = None
    subject: str = ""
    issuer: str = ""
    san: tuple[str, ...] = ()
    notbefore: int | None = None
    notafter: int | None = None
    pem: str | None = field(default=None, repr=False)
    public_key_type: str = ""
    public_key_bits: int | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "filename",
            "fingerprint",
            "subject",
            "issuer",
            "san",
            "notbefore",
            "notafter",
            "pem",
            "public-key-type",
            "public-key-bits",
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        fingerprint = _opt_str(d, "fingerprint")
        return cls(
            filename=_str(d, "filename"),
            fingerprint=fingerprint.lower() if fingerprint else None,
            subject=str(d.get("subject") or ""),
            issuer=str(d.get("issuer") or ""),
            san=_str_tuple(d, "san"),
            notbefore=_opt_int(d, "notbefore"),
            notafter=_opt_int(d, "notafter"),
            pem=_opt_str(d, "pem"),
            public_key_type=str(d.get("public-key-type") or ""),
            public_key_bits=_opt_int(d, "public-key-bits"),
            extra=_extra(d, cls._KNOWN),
        )


# --- remotes and sync jobs ---------------------------------------------------------------------


@dataclass(frozen=True)
class Remote:
    """A remote PBS (``/config/remote``). PBS never returns the password."""

    name: str
    host: str
    auth_id: str
    port: int | None = None
    fingerprint: str | None = None
    comment: str | None = None
    use_node_proxy: bool = False
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset({"name", "host", "auth-id", "port", "fingerprint", "comment", "use-node-proxy", "password"})

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            name=_str(d, "name"),
            host=_str(d, "host"),
            auth_id=_str(d, "auth-id"),
            port=_opt_int(d, "port"),
            fingerprint=_opt_str(d, "fingerprint"),
            comment=_opt_str(d, "comment"),
            use_node_proxy=_bool(d, "use-node-proxy", False),
            # "password" is in _KNOWN so that it can never land in extra
            extra=_extra(d, cls._KNOWN),
        )


# snake_case field -> PBS parameter, for sync jobs (the list PBS 4.2 accepts).
SYNC_JOB_FIELDS: dict[str, str] = {
    name: name.replace("_", "-")
    for name in (
        "store", "ns", "owner", "remote", "remote_store", "remote_ns", "remove_vanished",
        "max_depth", "schedule", "group_filter", "transfer_last", "resync_corrupt",
        "encrypted_only", "verified_only", "run_on_mount", "unmount_on_done", "sync_direction",
        "worker_threads", "rate_in", "burst_in", "rate_out", "burst_out", "comment",
        "active_encryption_key", "associated_key",
    )
}  # fmt: skip


@dataclass(frozen=True)
class SyncJob:
    """A sync job (``/config/sync``). ``remote`` None = a local sync. Fields not listed
    here (rates, encryption keys, ...) are in ``extra`` when reading; pass them to
    ``sync_job_create(..., **options)`` when writing."""

    id: str
    store: str
    remote_store: str
    remote: str | None = None
    ns: str | None = None
    remote_ns: str | None = None
    owner: str | None = None
    schedule: str | None = None
    remove_vanished: bool = False
    max_depth: int | None = None
    group_filter: tuple[str, ...] = ()
    transfer_last: int | None = None
    sync_direction: str = "pull"
    comment: str | None = None
    extra: Mapping[str, Any] = _extra_field()

    _KNOWN = frozenset(
        {
            "id",
            "store",
            "remote-store",
            "remote",
            "ns",
            "remote-ns",
            "owner",
            "schedule",
            "remove-vanished",
            "max-depth",
            "group-filter",
            "transfer-last",
            "sync-direction",
            "comment",
        }
    )

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        return cls(
            id=_str(d, "id"),
            store=_str(d, "store"),
            remote_store=_str(d, "remote-store"),
            remote=_opt_str(d, "remote"),
            ns=_opt_str(d, "ns"),
            remote_ns=_opt_str(d, "remote-ns"),
            owner=_opt_str(d, "owner"),
            schedule=_opt_str(d, "schedule"),
            remove_vanished=_bool(d, "remove-vanished", False),
            max_depth=_opt_int(d, "max-depth"),
            group_filter=_str_tuple(d, "group-filter"),
            transfer_last=_opt_int(d, "transfer-last"),
            sync_direction=str(d.get("sync-direction") or "pull"),
            comment=_opt_str(d, "comment"),
            extra=_extra(d, cls._KNOWN),
        )

    def to_api(self) -> dict[str, Any]:
        """Parameters for ``POST /config/sync`` (unset fields left out)."""
        params: dict[str, Any] = {"id": self.id, "store": self.store, "remote-store": self.remote_store}
        optional: dict[str, Any] = {
            "remote": self.remote,
            "ns": self.ns or None,
            "remote-ns": self.remote_ns or None,
            "owner": self.owner,
            "schedule": self.schedule,
            "max-depth": self.max_depth,
            "transfer-last": self.transfer_last,
            "comment": self.comment,
            "group-filter": list(self.group_filter) or None,
            "remove-vanished": True if self.remove_vanished else None,
            "sync-direction": None if self.sync_direction == "pull" else self.sync_direction,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        return params


# --- job schedule status (/admin/prune, /admin/sync) -----------------------------------------

_RUN_KEYS = frozenset({"next-run", "last-run-state", "last-run-upid", "last-run-endtime"})


def _run_state(d: Json) -> dict[str, Any]:
    return {
        "next_run": _opt_int(d, "next-run"),
        "last_run_state": _opt_str(d, "last-run-state"),
        "last_run_upid": _opt_str(d, "last-run-upid"),
        "last_run_endtime": _opt_int(d, "last-run-endtime"),
    }


@dataclass(frozen=True)
class PruneJobStatus(PruneJob):
    """``GET /admin/prune``: a prune job plus its schedule state."""

    next_run: int | None = None
    last_run_state: str | None = None
    last_run_upid: str | None = None
    last_run_endtime: int | None = None

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        base = PruneJob.from_api({key: value for key, value in d.items() if key not in _RUN_KEYS})
        return cls(**{f.name: getattr(base, f.name) for f in fields(PruneJob)}, **_run_state(d))


@dataclass(frozen=True)
class SyncJobStatus(SyncJob):
    """``GET /admin/sync``: a sync job plus its schedule state."""

    next_run: int | None = None
    last_run_state: str | None = None
    last_run_upid: str | None = None
    last_run_endtime: int | None = None

    @classmethod
    def from_api(cls, data: object) -> Self:
        d = _obj(data)
        base = SyncJob.from_api({key: value for key, value in d.items() if key not in _RUN_KEYS})
        return cls(**{f.name: getattr(base, f.name) for f in fields(SyncJob)}, **_run_state(d))
