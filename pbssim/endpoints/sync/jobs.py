"""/config/sync: sync jobs, with PBS access checks."""

from __future__ import annotations

import time
from typing import Any

from pbssim import acl
from pbssim.endpoints.sync.forms import _LINKS, JobState, SyncExtension, _direction, _status, _stored_job, extension
from pbssim.endpoints.sync.pull import PullFailed, pull
from pbssim.params import (
    MAX_NAMESPACE_DEPTH,
    param_error,
)
from pbssim.router import Request
from pbssim.state import (
    ROOT_USERID,
    ApiError,
    State,
    is_token,
    ns_acl_path,
    ns_components,
    ns_depth,
    split_authid,
)


def job_acl_path(job: dict[str, Any]) -> tuple[str, ...]:
    return ns_acl_path(job["store"], job.get("ns") or "")


def _push_remote_path(job: dict[str, Any]) -> tuple[str, ...]:
    remote_ns = ns_components(job.get("remote-ns") or "")
    return ("remote", job.get("remote") or "", job["remote-store"], *remote_ns)


def check_read_access(state: State, auth_id: str, job: dict[str, Any]) -> bool:
    """``check_sync_job_read_access``."""
    if not state.lookup_privs(auth_id, job_acl_path(job)) & acl.DATASTORE_AUDIT:
        return False
    if _direction(job) == "push":
        return bool(state.lookup_privs(auth_id, _push_remote_path(job)) & acl.REMOTE_AUDIT)
    if job.get("remote"):
        return bool(state.lookup_privs(auth_id, ("remote", job["remote"])) & acl.REMOTE_AUDIT)
    return bool(state.lookup_privs(auth_id, ("datastore", job["remote-store"])) & acl.DATASTORE_AUDIT)


def _correct_owner(job: dict[str, Any], auth_id: str) -> bool:
    owner = job.get("owner")
    if owner is None:
        return auth_id == ROOT_USERID
    if owner == auth_id:
        return True
    return is_token(owner) and not is_token(auth_id) and split_authid(owner)[0] == auth_id


def check_modify_access(state: State, auth_id: str, job: dict[str, Any]) -> bool:
    """``check_sync_job_modify_access`` (pbs-api 11.2/11.3)."""
    if _direction(job) == "push":
        source = state.lookup_privs(auth_id, job_acl_path(job))
        if not source & acl.DATASTORE_AUDIT or not source & acl.DATASTORE_READ:
            return False
        remote_privs = state.lookup_privs(auth_id, _push_remote_path(job))
        if not remote_privs & acl.PRIV["Remote.DatastoreBackup"]:
            return False
        if job.get("remove-vanished") and not remote_privs & acl.PRIV["Remote.DatastorePrune"]:
            return False
        return _correct_owner(job, auth_id) or bool(source & acl.DATASTORE_MODIFY)
    privs = state.lookup_privs(auth_id, job_acl_path(job))
    if not privs & acl.DATASTORE_BACKUP or not privs & acl.DATASTORE_AUDIT:
        return False
    if job.get("remove-vanished") and not privs & acl.DATASTORE_PRUNE:
        return False
    if not _correct_owner(job, auth_id) and not privs & acl.DATASTORE_MODIFY:
        return False
    if job.get("remote"):
        remote_privs = state.lookup_privs(auth_id, ("remote", job["remote"], job["remote-store"]))
        return bool(remote_privs & acl.REMOTE_READ)
    source = state.lookup_privs(auth_id, ("datastore", job["remote-store"], *ns_components(job.get("remote-ns") or "")))
    return bool(source & acl.DATASTORE_READ)


def _check_max_depth(job: dict[str, Any]) -> None:
    depth = job.get("max-depth")
    if depth is None:
        return
    for key in ("ns", "remote-ns"):
        ns = job.get(key)
        if ns and ns_depth(ns) + depth > MAX_NAMESPACE_DEPTH:
            raise ApiError(
                f"namespace '{ns}'s depth and recursion depth exceed limit: "
                f"{ns_depth(ns)} + {depth} > {MAX_NAMESPACE_DEPTH}"
            )


def _lookup_job(ext: SyncExtension, job_id: str) -> dict[str, Any]:
    job = ext.jobs.get(job_id)
    if job is None:
        raise ApiError(f"no such sync '{job_id}'")
    return job


def _direction_filter(job: dict[str, Any], wanted: str) -> bool:
    return wanted == "all" or _direction(job) == wanted


def list_sync_jobs(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    wanted = params.get("sync-direction") or "pull"
    req.attributes["digest"] = req.state.digest("sync")
    return [
        dict(ext.jobs[job_id])
        for job_id in sorted(ext.jobs)
        if _direction_filter(ext.jobs[job_id], wanted) and check_read_access(req.state, req.caller, ext.jobs[job_id])
    ]


def create_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    job = _stored_job(params)
    if _direction(job) == "push" and params.get("resync-corrupt") is not None:
        raise ApiError("push jobs do not support resync-corrupt option")
    if not check_modify_access(req.state, req.caller, job):
        raise ApiError("permission check failed")
    if job.get("remote") is None and _direction(job) == "push":
        raise ApiError("push jobs require a remote")
    if job["id"] in ext.jobs:
        raise ApiError(str(param_error("id", f"job '{job['id']}' already exists.")))
    _check_max_depth(job)
    ext.jobs[job["id"]] = job
    ext.job_states[job["id"]] = JobState(created=int(req.now))
    req.state.saved("sync")
    return None


def read_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    job = _lookup_job(ext, params["id"])
    if not check_read_access(req.state, req.caller, job):
        raise ApiError("permission check failed")
    req.attributes["digest"] = req.state.digest("sync")
    return dict(job)


def update_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    req.state.check_digest("sync", params.get("digest"))
    job_id = params["id"]
    data = dict(_lookup_job(ext, job_id))
    for key in params.get("delete", []):
        data.pop(key, None)
    for key, value in params.items():
        if key in ("id", "delete", "digest"):
            continue
        data[key] = value
    data = _stored_job(data)
    if not check_modify_access(req.state, req.caller, data):
        raise ApiError("permission check failed")
    _check_max_depth(data)
    ext.jobs[job_id] = data
    req.state.saved("sync")
    return None


def delete_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    req.state.check_digest("sync", params.get("digest"))
    job_id = params["id"]
    job = ext.jobs.get(job_id)
    if job is None:
        raise ApiError(f"job '{job_id}' does not exist.", 404)
    if not check_modify_access(req.state, req.caller, job):
        raise ApiError("permission check failed")
    del ext.jobs[job_id]
    ext.job_states.pop(job_id, None)
    req.state.saved("sync")
    return None


def list_sync_status(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    wanted = params.get("sync-direction") or "pull"
    store = params.get("store")
    req.attributes["digest"] = req.state.digest("sync")
    return [
        _status(ext, ext.jobs[job_id])
        for job_id in sorted(ext.jobs)
        if _direction_filter(ext.jobs[job_id], wanted)
        and (store is None or ext.jobs[job_id]["store"] == store)
        and check_read_access(req.state, req.caller, ext.jobs[job_id])
    ]


def escape_unit(text: str) -> str:
    """systemd's ``escape_unit`` as PBS applies it to worker ids in UPIDs."""
    out = []
    for i, ch in enumerate(text.encode()):
        c = chr(ch)
        if c == "/":
            out.append("-")
        elif (i == 0 and c == ".") or not (c in "_." or (c.isascii() and c.isalnum())):
            out.append(f"\\x{ch:02x}")
        else:
            out.append(c)
    return "".join(out)


def run_sync_job(req: Request, params: dict[str, Any]) -> Any:
    ext = extension(req.state)
    job_id = params["id"]
    job = _lookup_job(ext, job_id)
    if not check_modify_access(req.state, req.caller, job):
        raise ApiError(f"permission check failed, '{req.caller}' is missing access")
    log: list[str] = []
    try:
        pull(req.state, ext, job, log, _LINKS.get(req.simulator, {}))
        exitstatus = "OK"
    except PullFailed as exc:
        exitstatus = str(exc)
        log.append(f"TASK ERROR: {exc}")
    worker_id = escape_unit(
        f"{job.get('remote') or '-'}:{job['remote-store']}:{job['store']}:{job.get('ns') or ''}:{job_id}"
    )
    upid = req.state.new_task("syncjob", worker_id, req.caller, exitstatus=exitstatus)
    ext.task_logs[upid] = log
    js = ext.job_states.setdefault(job_id, JobState(created=int(req.now)))
    js.last_run_upid = upid
    js.last_run_state = exitstatus
    js.last_run_endtime = int(time.time())
    return upid
