"""Endpoints: namespaces and prune jobs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pbsclient import validation as v
from pbsclient.endpoints.base import Call, _call, _delete_list, _list_of, _none, _string
from pbsclient.models import (
    Namespace,
    PruneJob,
    PruneJobStatus,
)


def namespace_list(store: str, parent: str | None, max_depth: int | None) -> Call[list[Namespace]]:
    v.validate_store_name(store)
    if parent:
        v.validate_namespace(parent)
    if max_depth is not None and not 0 <= max_depth <= v.MAX_NAMESPACE_DEPTH:
        raise v.PbsValidationError(f"max_depth must be 0..{v.MAX_NAMESPACE_DEPTH}, not {max_depth}")
    params = {"parent": parent or None, "max-depth": max_depth}
    return _call("GET", "/admin/datastore/{}/namespace", (store,), _list_of(Namespace.from_api), params)


def namespace_create(store: str, name: str, parent: str | None) -> Call[str]:
    v.validate_store_name(store)
    v.validate_namespace_component(name)
    if parent:
        v.validate_namespace(parent)
        if parent.count("/") + 2 > v.MAX_NAMESPACE_DEPTH:
            raise v.PbsValidationError(
                f"namespace '{parent}/{name}' would be {parent.count('/') + 2} levels deep; "
                f"PBS allows at most {v.MAX_NAMESPACE_DEPTH}"
            )
    return _call("POST", "/admin/datastore/{}/namespace", (store,), _string, {"name": name, "parent": parent or None})


def _namespace_delete_result(data: Any) -> dict[str, int]:
    """PBS >= 3.2.11 answers removed-groups/protected-snapshots/removed-snapshots; older
    versions answer null (-> {}). Keys are returned in snake_case."""
    if not isinstance(data, Mapping):
        return {}
    return {str(key).replace("-", "_"): int(value) for key, value in data.items() if isinstance(value, int)}


def namespace_delete(
    store: str, ns: str, *, delete_groups: bool, error_on_protected: bool | None
) -> Call[dict[str, int]]:
    v.validate_store_name(store)
    v.validate_namespace(ns, allow_root=False)
    params = {
        "ns": ns,
        "delete-groups": True if delete_groups else None,
        "error-on-protected": error_on_protected,
    }
    return _call("DELETE", "/admin/datastore/{}/namespace", (store,), _namespace_delete_result, params)


_PRUNE_UPDATABLE = {
    "store": "store",
    "schedule": "schedule",
    "ns": "ns",
    "max_depth": "max-depth",
    "keep_last": "keep-last",
    "keep_hourly": "keep-hourly",
    "keep_daily": "keep-daily",
    "keep_weekly": "keep-weekly",
    "keep_monthly": "keep-monthly",
    "keep_yearly": "keep-yearly",
    "comment": "comment",
    "disable": "disable",
}


_PRUNE_DELETABLE = (
    "comment", "disable", "ns", "max-depth", "keep-last", "keep-hourly", "keep-daily",
    "keep-weekly", "keep-monthly", "keep-yearly",
)  # fmt: skip


def _check_prune_fields(fields: Mapping[str, Any]) -> None:
    if fields.get("store") is not None:
        v.validate_store_name(fields["store"])
    if fields.get("schedule") is not None:
        v.validate_calendar_event(fields["schedule"])
    if fields.get("ns"):
        v.validate_namespace(fields["ns"])
    max_depth = fields.get("max_depth")
    if max_depth is not None and not 0 <= max_depth <= v.MAX_NAMESPACE_DEPTH:
        raise v.PbsValidationError(f"max_depth must be 0..{v.MAX_NAMESPACE_DEPTH}, not {max_depth}")
    for name in _PRUNE_UPDATABLE:
        if name.startswith("keep_") and fields.get(name) is not None and fields[name] < 1:
            raise v.PbsValidationError(f"{name} must be at least 1 (leave it unset, or delete it, to not limit by it)")


def prune_job_list() -> Call[list[PruneJob]]:
    return _call("GET", "/config/prune", (), _list_of(PruneJob.from_api))


def prune_job_status_list(store: str | None) -> Call[list[PruneJobStatus]]:
    if store is not None:
        v.validate_store_name(store)
    return _call("GET", "/admin/prune", (), _list_of(PruneJobStatus.from_api), {"store": store})


def prune_job_get(job_id: str) -> Call[PruneJob]:
    v.validate_job_id(job_id)
    return _call("GET", "/config/prune/{}", (job_id,), PruneJob.from_api)


def prune_job_create(job: PruneJob) -> Call[None]:
    v.validate_job_id(job.id)
    _check_prune_fields({name: getattr(job, name) for name in _PRUNE_UPDATABLE})
    return _call("POST", "/config/prune", (), _none, job.to_api())


def prune_job_update(job_id: str, *, delete: Iterable[str] | None, fields: Mapping[str, Any]) -> Call[None]:
    v.validate_job_id(job_id)
    unknown = sorted(set(fields) - set(_PRUNE_UPDATABLE))
    if unknown:
        raise TypeError(
            f"prune_job_update() got unknown field(s) {', '.join(unknown)}; known: {', '.join(_PRUNE_UPDATABLE)}"
        )
    _check_prune_fields(fields)
    params: dict[str, Any] = {_PRUNE_UPDATABLE[name]: value for name, value in fields.items()}
    params["delete"] = _delete_list(delete, _PRUNE_DELETABLE, "prune job")
    return _call("PUT", "/config/prune/{}", (job_id,), _none, params)


def prune_job_delete(job_id: str) -> Call[None]:
    v.validate_job_id(job_id)
    return _call("DELETE", "/config/prune/{}", (job_id,), _none)
