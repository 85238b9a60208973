"""Prune jobs: /config/prune (CRUD) and /admin/prune (status, run).

Written from the reference, section 6 (``src/api2/config/prune.rs``,
``src/api2/admin/prune.rs``): privilege failures are 400 ``missing permissions ...``
(``check_privs``), unknown ids 400 ``no such prune 'x'``.
"""

from __future__ import annotations

from typing import Any

from pbssim import acl
from pbssim.calendar import next_event, parse_calendar_event
from pbssim.params import (
    CALENDAR_EVENT,
    COMMENT,
    DATASTORE,
    DIGEST,
    JOB_ID,
    KEEP,
    KEEP_NAMES,
    NAMESPACE,
    NS_MAX_DEPTH,
    array,
    boolean,
    param_error,
    string,
)
from pbssim.router import ANYBODY, Request, Router
from pbssim.state import ApiError, PruneJob, State, compute_prune, ns_depth

PRUNE_CONFIG = "prune"
OPTION_KEYS = ("ns", "max-depth", *KEEP_NAMES)
DELETABLE = ("comment", "disable", "ns", "max-depth", *KEEP_NAMES)


def lookup_job(state: State, job_id: str) -> PruneJob:
    job = state.prune_jobs.get(job_id)
    if job is None:
        raise ApiError(f"no such prune '{job_id}'")
    return job


def list_jobs(req: Request, params: dict[str, Any]) -> Any:
    """Jobs whose path gives the caller Datastore.Audit or .Modify."""
    state, auth_id = req.state, req.caller
    wanted = acl.DATASTORE_AUDIT | acl.DATASTORE_MODIFY
    req.attributes["digest"] = state.digest(PRUNE_CONFIG)
    return [job.to_api() for job in state.prune_jobs.values() if state.lookup_privs(auth_id, job.acl_path()) & wanted]


def create_job(req: Request, params: dict[str, Any]) -> Any:
    """Datastore.Modify on the job's path, checked before the id. Store and namespace
    are not checked for existence."""
    state = req.state
    config = {key: value for key, value in params.items() if key != "digest"}
    job = PruneJob(config)
    state.check_privs(req.caller, job.acl_path(), acl.DATASTORE_MODIFY, partial=True)
    if job.id in state.prune_jobs:
        raise param_error("id", f"job '{job.id}' already exists.")
    state.prune_jobs[job.id] = job
    state.saved(PRUNE_CONFIG)
    return None


def read_job(req: Request, params: dict[str, Any]) -> Any:
    state = req.state
    job = lookup_job(state, params["id"])
    state.check_privs(req.caller, job.acl_path(), acl.DATASTORE_AUDIT, partial=True)
    req.attributes["digest"] = state.digest(PRUNE_CONFIG)
    return job.to_api()


def update_job(req: Request, params: dict[str, Any]) -> Any:
    """Modify on the old path, and on the new one when store or ns change."""
    state, auth_id = req.state, req.caller
    state.check_digest(PRUNE_CONFIG, params.get("digest"))
    job = lookup_job(state, params["id"])
    state.check_privs(auth_id, job.acl_path(), acl.DATASTORE_MODIFY, partial=True)
    config = dict(job.config)
    for prop in params.get("delete", []):
        config.pop(prop, None)
        if prop == "disable":
            config.pop("disable", None)
    recheck = False
    if "store" in params:
        config["store"] = params["store"]
        recheck = True
    if "ns" in params:
        if params["ns"]:
            config["ns"] = params["ns"]
        else:
            config.pop("ns", None)
        recheck = True
    candidate = PruneJob(config)
    if recheck:
        state.check_privs(auth_id, candidate.acl_path(), acl.DATASTORE_MODIFY, partial=True)
    schedule_changed = "schedule" in params and params["schedule"] != config.get("schedule")
    for key in ("schedule", "max-depth", "disable", "comment", *KEEP_NAMES):
        if key in params:
            config[key] = params[key]
    job.config = config
    if schedule_changed:
        job.last_run_endtime = int(req.now)
    state.saved(PRUNE_CONFIG)
    return None


def delete_job(req: Request, params: dict[str, Any]) -> Any:
    """The lookup comes first, so an unknown id is 400 ``no such prune``, never 404."""
    state = req.state
    job = lookup_job(state, params["id"])
    state.check_privs(req.caller, job.acl_path(), acl.DATASTORE_MODIFY, partial=True)
    state.check_digest(PRUNE_CONFIG, params.get("digest"))
    del state.prune_jobs[job.id]
    state.saved(PRUNE_CONFIG)
    return None


def schedule_status(job: PruneJob, now: float) -> dict[str, Any]:
    """``compute_schedule_status``: next-run from the schedule, plus the last run."""
    status: dict[str, Any] = {}
    if not job.config.get("disable", False):
        try:
            event = parse_calendar_event(str(job.config["schedule"]))
            upcoming = next_event(event, int(job.last_run_endtime or now))
        except ValueError:
            upcoming = None
        if upcoming is not None:
            status["next-run"] = upcoming
    if job.last_run_upid is not None:
        status["last-run-upid"] = job.last_run_upid
        status["last-run-state"] = job.last_run_state
        status["last-run-endtime"] = job.last_run_endtime
    return status


def list_job_status(req: Request, params: dict[str, Any]) -> Any:
    """``GET /admin/prune``: jobs the caller may audit or modify, with schedule status."""
    state, auth_id = req.state, req.caller
    wanted = acl.DATASTORE_AUDIT | acl.DATASTORE_MODIFY
    store = params.get("store")
    result = []
    for job in state.prune_jobs.values():
        if not state.lookup_privs(auth_id, job.acl_path()) & wanted:
            continue
        if store is not None and job.store != store:
            continue
        result.append({**job.to_api(), **schedule_status(job, req.now)})
    req.attributes["digest"] = state.digest(PRUNE_CONFIG)
    return result


def run_job(req: Request, params: dict[str, Any]) -> Any:
    """Runs the job at once: prunes ``ns`` and its children down to ``max-depth``."""
    state = req.state
    job = lookup_job(state, params["id"])
    state.check_privs(req.caller, job.acl_path(), acl.DATASTORE_MODIFY, partial=True)
    upid = run_prune(state, job, req.caller, req.now)
    return upid


def run_prune(state: State, job: PruneJob, auth_id: str, now: float) -> str:
    store = state.datastores.get(job.store)
    exitstatus = "OK"
    if store is None:
        exitstatus = f"Error: no such datastore '{job.store}'"
    else:
        keep = {name: int(job.config[name]) for name in KEEP_NAMES if name in job.config}
        depth = job.config.get("max-depth")
        for ns in store.subtree(job.ns):
            if depth is not None and ns_depth(ns) - ns_depth(job.ns) > depth:
                continue
            for group in store.groups_in(ns).values():
                marks = compute_prune(list(group.snapshots.values()), keep)
                for backup_time, mark in marks.items():
                    if mark == "remove":
                        store.remove_snapshot(group, backup_time)
    upid = state.new_task("prunejob", f"{job.store}:{job.id}", auth_id, exitstatus=exitstatus)
    job.last_run_upid = upid
    job.last_run_state = "ok" if exitstatus == "OK" else exitstatus
    job.last_run_endtime = int(now)
    return upid


def register(router: Router) -> None:
    options = {
        "ns": NAMESPACE,
        "max-depth": NS_MAX_DEPTH,
        **dict.fromkeys(KEEP_NAMES, KEEP),
        "comment": COMMENT,
        "disable": boolean(default=False),
    }
    router.add("GET", "/config/prune", list_jobs, permission=ANYBODY)
    router.add(
        "POST",
        "/config/prune",
        create_job,
        permission=ANYBODY,
        params={"id": JOB_ID, "store": DATASTORE, "schedule": CALENDAR_EVENT, **options},
    )
    router.add("GET", "/config/prune/{id}", read_job, permission=ANYBODY, params={"id": JOB_ID})
    router.add(
        "PUT",
        "/config/prune/{id}",
        update_job,
        permission=ANYBODY,
        params={
            "id": JOB_ID,
            "store": DATASTORE.opt(),
            "schedule": CALENDAR_EVENT.opt(),
            **options,
            "delete": array(string(enum=DELETABLE)),
            "digest": DIGEST,
        },
    )
    router.add("DELETE", "/config/prune/{id}", delete_job, permission=ANYBODY, params={"id": JOB_ID, "digest": DIGEST})
    router.add("GET", "/admin/prune", list_job_status, permission=ANYBODY, params={"store": DATASTORE.opt()})
    router.add("POST", "/admin/prune/{id}/run", run_job, permission=ANYBODY, params={"id": JOB_ID})
