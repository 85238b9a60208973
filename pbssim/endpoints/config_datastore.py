"""/config/datastore: datastore configuration (reference sections 6.2 and 8).

Create and delete run as worker tasks and return a UPID; the simulator finishes them
at once (``GET /nodes/{node}/tasks/{upid}/status`` says stopped/OK).
"""

from __future__ import annotations

import uuid
from typing import Any

from pbssim import acl
from pbssim.params import (
    CALENDAR_EVENT,
    COMMENT,
    DATASTORE,
    DIGEST,
    KEEP,
    KEEP_NAMES,
    USERID,
    UUID_RE,
    array,
    boolean,
    param_error,
    string,
)
from pbssim.router import ANYBODY, Privilege, Request, Router
from pbssim.state import ApiError, Datastore, PruneJob

DATASTORE_CONFIG = "datastore"
PRUNE_SETTINGS = (*KEEP_NAMES, "prune-schedule")
# Config properties kept as given (besides name, path and comment).
EXTRA_KEYS = (
    "gc-schedule",
    "gc-on-unmount",
    "verify-new",
    "notify-user",
    "notify",
    "notification-mode",
    "tuning",
    "maintenance-mode",
    "backing-device",
    "backend",
    "notification-thresholds",
    "counter-reset-schedule",
)
DELETABLE = (
    "comment",
    "gc-schedule",
    "gc-on-unmount",
    "prune-schedule",
    *KEEP_NAMES,
    "verify-new",
    "notify-user",
    "notify",
    "notification-mode",
    "tuning",
    "maintenance-mode",
    "notification-thresholds",
    "counter-reset-schedule",
)


def list_configs(req: Request, params: dict[str, Any]) -> Any:
    state, auth_id = req.state, req.caller
    req.attributes["digest"] = state.digest(DATASTORE_CONFIG)
    return [
        state.datastores[name].config_api()
        for name in sorted(state.datastores)
        if state.lookup_privs(auth_id, ("datastore", name)) & acl.DATASTORE_AUDIT
    ]


def create_config(req: Request, params: dict[str, Any]) -> Any:
    """prune-schedule (+ keep-*) becomes a root-namespace prune job; keep-* without a
    schedule are dropped; the datastore itself keeps no retention."""
    state = req.state
    name = params["name"]
    if name in state.datastores:
        raise param_error("name", f"datastore '{name}' already exists.")
    store = Datastore(name=name, path=params["path"], comment=params.get("comment"))
    store.config = {key: params[key] for key in EXTRA_KEYS if key in params}
    schedule = params.get("prune-schedule")
    if schedule is not None:
        job_id = f"default-{name}-{uuid.uuid4()}"[:32]
        config: dict[str, Any] = {"id": job_id, "store": name, "schedule": schedule}
        config.update({key: params[key] for key in KEEP_NAMES if key in params})
        state.prune_jobs[job_id] = PruneJob(config)
        state.saved("prune")
    state.datastores[name] = store
    state.saved(DATASTORE_CONFIG)
    return state.new_task("create-datastore", name, req.caller)


def read_config(req: Request, params: dict[str, Any]) -> Any:
    state = req.state
    store = state.lookup_datastore(params["name"])
    req.attributes["digest"] = state.digest(DATASTORE_CONFIG)
    return store.config_api()


def update_config(req: Request, params: dict[str, Any]) -> Any:
    """keep-* and prune-schedule are refused (first one found, in PBS's order)."""
    state = req.state
    state.check_digest(DATASTORE_CONFIG, params.get("digest"))
    store = state.lookup_datastore(params["name"])
    for key in PRUNE_SETTINGS:
        if key in params:
            raise param_error(key, "datastore prune settings have been replaced by prune jobs")
    for prop in params.get("delete", []):
        if prop == "comment":
            store.comment = None
        else:
            store.config.pop(prop, None)
    if "comment" in params:
        store.comment = params["comment"].strip() or None
    for key in EXTRA_KEYS:
        if key in params:
            store.config[key] = params[key]
    state.saved(DATASTORE_CONFIG)
    return None


def delete_config(req: Request, params: dict[str, Any]) -> Any:
    """Also removes the store's prune jobs unless keep-job-configs is set."""
    state = req.state
    name = params["name"]
    state.check_digest(DATASTORE_CONFIG, params.get("digest"))
    if name not in state.datastores:
        raise ApiError(f"datastore '{name}' does not exist.", 404)
    del state.datastores[name]
    if not params.get("keep-job-configs", False):
        for job_id in [job.id for job in state.prune_jobs.values() if job.store == name]:
            del state.prune_jobs[job_id]
        state.saved("prune")
        for hook in state.datastore_removed_hooks:
            hook(state, name)
    state.saved(DATASTORE_CONFIG)
    return state.new_task("delete-datastore", name, req.caller)


def register(router: Router) -> None:
    settings = {
        "comment": COMMENT,
        "gc-schedule": CALENDAR_EVENT.opt(),
        "gc-on-unmount": boolean(),
        "prune-schedule": CALENDAR_EVENT.opt(),
        **dict.fromkeys(KEEP_NAMES, KEEP),
        "verify-new": boolean(),
        "notify-user": USERID.opt(),
        "notify": string(optional=True),
        "notification-mode": string(
            enum=("legacy-sendmail", "notification-system"), optional=True, default="notification-system"
        ),
        "tuning": string(optional=True),
        "maintenance-mode": string(optional=True),
        "notification-thresholds": string(optional=True),
        "counter-reset-schedule": CALENDAR_EVENT.opt(),
    }
    name = {"name": DATASTORE}
    router.add("GET", "/config/datastore", list_configs, permission=ANYBODY)
    router.add(
        "POST",
        "/config/datastore",
        create_config,
        permission=Privilege(("datastore",), acl.DATASTORE_ALLOCATE),
        params={
            **name,
            "path": string(min_length=1, max_length=4096),
            **settings,
            "backing-device": string(pattern=UUID_RE, optional=True),
            "backend": string(optional=True),
            "reuse-datastore": boolean(default=False),
            "overwrite-in-use": boolean(default=False),
        },
    )
    router.add(
        "GET",
        "/config/datastore/{name}",
        read_config,
        params=name,
        permission=Privilege(("datastore", "{name}"), acl.DATASTORE_AUDIT),
    )
    router.add(
        "PUT",
        "/config/datastore/{name}",
        update_config,
        permission=Privilege(("datastore", "{name}"), acl.DATASTORE_MODIFY),
        params={**name, **settings, "delete": array(string(enum=DELETABLE)), "digest": DIGEST},
    )
    router.add(
        "DELETE",
        "/config/datastore/{name}",
        delete_config,
        permission=Privilege(("datastore", "{name}"), acl.DATASTORE_ALLOCATE),
        params={
            **name,
            "keep-job-configs": boolean(default=False),
            "destroy-data": boolean(default=False),
            "digest": DIGEST,
        },
    )
