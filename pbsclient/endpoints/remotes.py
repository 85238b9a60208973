"""Endpoints: remotes and sync jobs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pbsclient import validation as v
from pbsclient.endpoints.base import Call, _call, _delete_list, _list_of, _none, _optional_string
from pbsclient.models import (
    SYNC_JOB_FIELDS,
    Remote,
    SyncJob,
    SyncJobStatus,
)

_REMOTE_DELETABLE = ("comment", "fingerprint", "port", "use-node-proxy")


def remote_list() -> Call[list[Remote]]:
    return _call("GET", "/config/remote", (), _list_of(Remote.from_api))


def remote_get(name: str) -> Call[Remote]:
    v.validate_remote_name(name)
    return _call("GET", "/config/remote/{}", (name,), Remote.from_api)


def _check_port(port: int | None) -> None:
    if port is not None and not 1 <= port <= 65535:
        raise v.PbsValidationError(f"port {port} is outside 1..65535")


def remote_create(
    name: str,
    *,
    host: str,
    auth_id: str,
    password: str,
    port: int | None,
    fingerprint: str | None,
    comment: str | None,
    use_node_proxy: bool,
) -> Call[None]:
    v.validate_remote_name(name)
    v.validate_authid(auth_id)
    _check_port(port)
    if not password:
        raise v.PbsValidationError("a remote needs a password or token secret")
    params = {
        "name": name,
        "host": host,
        "auth-id": auth_id,
        "password": password,
        "port": port,
        "fingerprint": v.validate_fingerprint(fingerprint) if fingerprint else None,
        "comment": comment,
        "use-node-proxy": True if use_node_proxy else None,
    }
    return _call("POST", "/config/remote", (), _none, params, secrets=(password,))


def remote_update(
    name: str,
    *,
    host: str | None,
    auth_id: str | None,
    password: str | None,
    port: int | None,
    fingerprint: str | None,
    comment: str | None,
    use_node_proxy: bool | None,
    delete: Iterable[str] | None,
) -> Call[None]:
    v.validate_remote_name(name)
    if auth_id is not None:
        v.validate_authid(auth_id)
    _check_port(port)
    params = {
        "host": host,
        "auth-id": auth_id,
        "password": password,
        "port": port,
        "fingerprint": v.validate_fingerprint(fingerprint) if fingerprint else None,
        "comment": comment,
        "use-node-proxy": use_node_proxy,
        "delete": _delete_list(delete, _REMOTE_DELETABLE, "remote"),
    }
    return _call("PUT", "/config/remote/{}", (name,), _none, params, secrets=(password,) if password else ())


def remote_delete(name: str) -> Call[None]:
    v.validate_remote_name(name)
    return _call("DELETE", "/config/remote/{}", (name,), _none)


def _sync_params(fields: Mapping[str, Any], what: str) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(SYNC_JOB_FIELDS))
    if unknown:
        raise TypeError(f"{what} got unknown field(s) {', '.join(unknown)}; known: {', '.join(SYNC_JOB_FIELDS)}")
    if fields.get("store") is not None:
        v.validate_store_name(fields["store"])
    if fields.get("remote") is not None:
        v.validate_remote_name(fields["remote"])
    if fields.get("schedule") is not None:
        v.validate_calendar_event(fields["schedule"])
    for key in ("ns", "remote_ns"):
        if fields.get(key):
            v.validate_namespace(fields[key])
    if fields.get("owner") is not None:
        v.validate_authid(fields["owner"])
    params: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, tuple):
            value = list(value)
        params[SYNC_JOB_FIELDS[name]] = value
    return params


def sync_job_list(sync_direction: str | None) -> Call[list[SyncJob]]:
    if sync_direction is not None and sync_direction not in ("pull", "push", "all"):
        raise v.PbsValidationError(f"sync direction '{sync_direction}' is not pull, push or all")
    return _call("GET", "/config/sync", (), _list_of(SyncJob.from_api), {"sync-direction": sync_direction})


def sync_job_status_list(store: str | None, sync_direction: str | None) -> Call[list[SyncJobStatus]]:
    if store is not None:
        v.validate_store_name(store)
    if sync_direction is not None and sync_direction not in ("pull", "push", "all"):
        raise v.PbsValidationError(f"sync direction '{sync_direction}' is not pull, push or all")
    params = {"store": store, "sync-direction": sync_direction}
    return _call("GET", "/admin/sync", (), _list_of(SyncJobStatus.from_api), params)


def sync_job_get(job_id: str) -> Call[SyncJob]:
    v.validate_job_id(job_id)
    return _call("GET", "/config/sync/{}", (job_id,), SyncJob.from_api)


def sync_job_create(job: SyncJob, options: Mapping[str, Any]) -> Call[None]:
    v.validate_job_id(job.id)
    base = {
        "store": job.store,
        "remote": job.remote,
        "schedule": job.schedule,
        "ns": job.ns,
        "remote_ns": job.remote_ns,
        "owner": job.owner,
    }
    _sync_params({key: value for key, value in base.items() if value is not None}, "sync_job_create()")
    params = job.to_api()
    params.update(_sync_params(options, "sync_job_create()"))
    return _call("POST", "/config/sync", (), _none, params)


_SYNC_DELETABLE = tuple(
    name for name in SYNC_JOB_FIELDS.values() if name not in ("store", "remote-store", "resync-corrupt")
)


def sync_job_update(job_id: str, *, delete: Iterable[str] | None, fields: Mapping[str, Any]) -> Call[None]:
    v.validate_job_id(job_id)
    params = _sync_params(fields, "sync_job_update()")
    params["delete"] = _delete_list(delete, _SYNC_DELETABLE, "sync job")
    return _call("PUT", "/config/sync/{}", (job_id,), _none, params)


def sync_job_delete(job_id: str) -> Call[None]:
    v.validate_job_id(job_id)
    return _call("DELETE", "/config/sync/{}", (job_id,), _none)


def sync_job_run(job_id: str) -> Call[str | None]:
    """Returns the task UPID (the published schema says null; PBS sends the UPID)."""
    v.validate_job_id(job_id)
    return _call("POST", "/admin/sync/{}/run", (job_id,), _optional_string)
