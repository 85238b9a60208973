"""The offsite app's view of a PBS host: thin adapters over pbsclient, one place to change.

Everything here is a plain call on a ``PbsClient``; it returns dicts keyed by PBS's own
parameter names (``remote-store``, ``group-filter``...) so the services can compare wanted and
actual sync job configurations without caring about the client's dataclass field names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pbsclient.errors import NotFound

# The sync job options the portal manages; anything else on a job is left alone.
JOB_KEYS = (
    "store",
    "ns",
    "remote",
    "remote-store",
    "remote-ns",
    "remove-vanished",
    "max-depth",
    "schedule",
    "group-filter",
    "transfer-last",
    "encrypted-only",
    "verified-only",
    "rate-in",
    "burst-in",
    "owner",
    "comment",
)
# Deletable on PUT (PBS's `delete` enum for /config/sync/{id}); store/remote-store are not.
JOB_DELETABLE = frozenset(JOB_KEYS) - {"store", "remote-store"}


def _kebab(obj: Any) -> dict[str, Any]:
    """A pbsclient model (or a raw PBS dict) as PBS's kebab-case dict; ``extra`` (fields the
    model doesn't name, already kebab-case) is folded in."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        raw = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    elif isinstance(obj, dict):
        raw = dict(obj)
    else:
        raw = dict(vars(obj))
    extra = raw.pop("extra", None) or {}
    out = {key.replace("_", "-"): value for key, value in raw.items()}
    out.update(extra)
    return out


def _snake(params: dict[str, Any]) -> dict[str, Any]:
    return {key.replace("-", "_"): value for key, value in params.items()}


def job_normalize(config: dict[str, Any]) -> dict[str, Any]:
    """Only the managed keys, with PBS's defaults folded in (unset == default)."""
    out: dict[str, Any] = {}
    for key in JOB_KEYS:
        value = config.get(key)
        if key in ("remove-vanished", "encrypted-only", "verified-only"):
            value = bool(value) if value is not None else False
        elif key == "group-filter":
            value = list(value or [])
        elif value == "":
            value = None
        out[key] = value
    return out


def job_get(client: Any, job_id: str) -> dict[str, Any] | None:
    try:
        return _kebab(client.sync_job_get(job_id))
    except NotFound:
        return None


# Options pbsclient's SyncJob model has no field for: passed as keyword options.
_JOB_OPTIONS = ("encrypted-only", "verified-only", "rate-in", "burst-in")


def job_create(client: Any, job_id: str, wanted: dict[str, Any]) -> None:
    from pbsclient.models import SyncJob

    fields = {k: v for k, v in wanted.items() if v not in (None, [], False)}
    options = {k: fields.pop(k) for k in _JOB_OPTIONS if k in fields}
    if "group-filter" in fields:
        fields["group-filter"] = tuple(fields["group-filter"])
    client.sync_job_create(SyncJob(id=job_id, **_snake(fields)), **_snake(options))


def job_update(client: Any, job_id: str, wanted: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """PUT only what differs; unset wanted values are deleted. Returns the changed keys."""
    changed = [k for k in JOB_KEYS if job_normalize(wanted)[k] != job_normalize(actual)[k]]
    if not changed:
        return []
    set_fields = {
        k: wanted[k] for k in changed if job_normalize(wanted)[k] not in (None, [], False)
    }
    delete = [k for k in changed if k not in set_fields and k in JOB_DELETABLE]
    client.sync_job_update(job_id, delete=delete, **_snake(set_fields))
    return changed


def job_delete(client: Any, job_id: str) -> bool:
    try:
        client.sync_job_delete(job_id)
    except NotFound:
        return False
    return True


def job_status_list(client: Any) -> list[dict[str, Any]]:
    """GET /admin/sync: every job with last-run-state, last-run-endtime, next-run."""
    return [_kebab(item) for item in client.sync_job_status_list()]


def remote_get(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return _kebab(client.remote_get(name))
    except NotFound:
        return None
