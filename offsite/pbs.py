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
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        raw = dataclasses.asdict(obj)
    elif isinstance(obj, dict):
        raw = dict(obj)
    else:
        raw = dict(vars(obj))
    return {key.replace("_", "-"): value for key, value in raw.items()}


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


def job_create(client: Any, job_id: str, wanted: dict[str, Any]) -> None:
    from pbsclient.models import SyncJob

    fields = {k: v for k, v in wanted.items() if v not in (None, [], False)}
    client.sync_job_create(SyncJob(id=job_id, **_snake(fields)))


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


def remote_get(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return _kebab(client.remote_get(name))
    except NotFound:
        return None
