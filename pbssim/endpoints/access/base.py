"""/access: realms, roles, permissions and tickets, with the privilege rules shared by the access endpoints."""

from __future__ import annotations

from typing import Any

from pbssim import acl
from pbssim.router import Or, Privilege, Request, UserParam
from pbssim.state import ApiError, check_password, is_token, split_authid

USERS_PATH = ("access", "users")


ACL_PATH_ACCESS = ("access", "acl")


USER_CONFIG = "user"


ACL_CONFIG = "acl"


MODIFY_USERS = Or((Privilege(USERS_PATH, acl.PERMISSIONS_MODIFY), UserParam("userid")))


AUDIT_USERS = Or((Privilege(USERS_PATH, acl.SYS_AUDIT), UserParam("userid")))


def list_domains(req: Request, params: dict[str, Any]) -> Any:
    return [{"realm": realm, "type": kind, "comment": comment} for realm, (kind, comment) in req.state.realms.items()]


def list_roles(req: Request, params: dict[str, Any]) -> Any:
    return [
        {"roleid": role, "privs": acl.priv_names(privs), "comment": comment}
        for role, (privs, comment) in acl.ROLES.items()
    ]


DEFAULT_PERMISSION_PATHS = ("/", "/access", "/datastore", "/remote", "/system")


def list_permissions(req: Request, params: dict[str, Any]) -> Any:
    """``GET /access/permissions``: {path: {privilege: propagate}} for an auth-id."""
    state, current = req.state, req.caller
    auth_id = params.get("auth-id")
    if auth_id is None or auth_id == current:
        auth_id = current
    else:
        may_audit = state.lookup_privs(current, ("access",)) & acl.SYS_AUDIT
        own_token = is_token(auth_id) and not is_token(current) and split_authid(auth_id)[0] == split_authid(current)[0]
        if not (may_audit or own_token):
            raise ApiError(f"not allowed to list permissions of {auth_id}")
    path = params.get("path")
    paths = [path] if path is not None else sorted({*state.acl.all_paths(), *DEFAULT_PERMISSION_PATHS})
    result: dict[str, dict[str, bool]] = {}
    for one in paths:
        privs, propagated = state.lookup_privs_details(auth_id, acl.split_acl_path(one))
        if privs == 0:
            continue  # PBS does not leak paths without privileges
        result[one] = {name: bool(acl.PRIV[name] & propagated) for name in acl.priv_names(privs)}
    return result


def create_ticket(req: Request, params: dict[str, Any]) -> Any:
    """``POST /access/ticket``: password (or a still-valid ticket) -> ticket + CSRF token."""
    state = req.state
    username = params["username"]
    password = params.get("password")
    if password is None:
        raise ApiError("no password provided")
    sim = req.simulator
    user = state.users.get(username)
    realm = username.rpartition("@")[2]
    valid = False
    if user is not None and realm in state.realms and state.is_active_authid(username, req.now):
        if password.startswith("PBS:"):
            valid = sim.tickets.verify_ticket(password, req.now) == username
        else:
            stored = state.passwords.get(username)
            valid = stored is not None and check_password(password, stored)
    if not valid:
        raise ApiError("permission check failed.", 401)
    ticket = sim.tickets.make_ticket(username, req.now)
    csrf = sim.tickets.make_csrf(username, req.now)
    if params.get("http-only", False):
        req.response_headers["Set-Cookie"] = f"__Host-PBSAuthCookie={ticket}; Secure; SameSite=Lax; HttpOnly; Path=/;"
        info = ticket.rsplit("::", 1)[0] + "::"
        return {"username": username, "ticket-info": info, "CSRFPreventionToken": csrf}
    return {"username": username, "ticket": ticket, "CSRFPreventionToken": csrf}


def delete_ticket(req: Request, params: dict[str, Any]) -> Any:
    req.response_headers["Set-Cookie"] = (
        "__Host-PBSAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Lax; HttpOnly; Path=/;"
    )
    return None
