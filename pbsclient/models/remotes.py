"""Response models: certificates, remotes, sync jobs and job schedule status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self

from pbsclient.models.base import Json, _bool, _extra, _extra_field, _obj, _opt_int, _opt_str, _str, _str_tuple
from pbsclient.models.namespaces import PruneJob


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
