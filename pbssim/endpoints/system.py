"""/version, /ping, /nodes: certificate info and task status."""

from __future__ import annotations

from typing import Any

from pbssim import acl
from pbssim.params import NODE, UPID, compile_pattern
from pbssim.router import ANYBODY, WORLD, Privilege, Request, Router
from pbssim.state import ApiError, split_authid, unescape_unit

# The commit PBS 4.2.3 was built from (the reference, section 0).
REPOID = "bc863d45e7fbadb3690143613ea70600535f23a1"


def version(req: Request, params: dict[str, Any]) -> Any:
    sim = req.simulator
    return {"version": sim.version, "release": sim.release, "repoid": REPOID}


def ping(req: Request, params: dict[str, Any]) -> Any:
    return {"pong": True}


def list_nodes(req: Request, params: dict[str, Any]) -> Any:
    return [{"node": req.state.node}]


def certificate_info(req: Request, params: dict[str, Any]) -> Any:
    return [dict(req.simulator.certificate)]


def task_status(req: Request, params: dict[str, Any]) -> Any:
    """Own tasks (or the own tokens' tasks) or Sys.Audit on /system/tasks; a UPID the
    simulator never issued reads as stopped with exit status "unknown"."""
    state, auth_id = req.state, req.caller
    upid = params["upid"]
    match = compile_pattern(UPID.pattern or "").match(upid)
    if match is None:  # the parameter schema checked the format already
        raise ApiError("unable to parse UPID")
    task_auth_id = match.group("authid")
    owner_user, token_name = split_authid(task_auth_id)
    own = auth_id == task_auth_id or (token_name is not None and owner_user == auth_id)
    if not own and not state.lookup_privs(auth_id, ("system", "tasks")) & acl.SYS_AUDIT:
        raise ApiError("task access not allowed")
    result: dict[str, Any] = {
        "upid": upid,
        "node": match.group("node"),
        "pid": int(match.group("pid"), 16),
        "pstart": int(match.group("pstart"), 16),
        "starttime": int(match.group("starttime"), 16),
        "type": match.group("wtype"),
        "id": unescape_unit(match.group("wid")),
        "user": owner_user,
    }
    if token_name is not None:
        result["tokenid"] = token_name
    task = state.tasks.get(upid)
    result["status"] = "stopped"
    if task is None:
        result["exitstatus"] = "unknown"
    else:
        result["exitstatus"] = task.exitstatus
        result["endtime"] = task.endtime
    return result


def register(router: Router) -> None:
    router.add("GET", "/version", version, permission=ANYBODY)
    router.add("GET", "/ping", ping, permission=WORLD)
    router.add("GET", "/nodes", list_nodes, permission=ANYBODY)
    router.add(
        "GET",
        "/nodes/{node}/certificates/info",
        certificate_info,
        params={"node": NODE},
        permission=Privilege(("system", "certificates"), acl.SYS_MODIFY),
    )
    router.add(
        "GET",
        "/nodes/{node}/tasks/{upid}/status",
        task_status,
        permission=ANYBODY,
        params={"node": NODE, "upid": UPID},
    )
