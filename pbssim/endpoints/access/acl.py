"""/access/acl: read and update."""

from __future__ import annotations

from typing import Any

from pbssim import acl
from pbssim.endpoints.access.base import ACL_CONFIG, ACL_PATH_ACCESS
from pbssim.router import Request
from pbssim.state import ApiError, is_token, split_authid


def read_acl(req: Request, params: dict[str, Any]) -> Any:
    """Everything with Sys.Audit on /access/acl, otherwise only the caller's tokens' entries."""
    state, auth_id = req.state, req.caller
    see_all = bool(state.lookup_privs(auth_id, ACL_PATH_ACCESS) & acl.SYS_AUDIT)
    req.attributes["digest"] = state.digest(ACL_CONFIG)
    if not see_all and is_token(auth_id):
        return []  # tokens can't have tokens
    path = params.get("path")
    exact = params.get("exact", False)
    if path is not None:
        node = state.acl.find_node(acl.split_acl_path(path))
        # PBS appends "/<child>" to the path as given, so path=/ lists children as "//x".
        start_path = path
    else:
        node = state.acl.root
        start_path = ""
    if node is None:
        return []
    userid = split_authid(auth_id)[0]
    result = []
    for entry_path, ugid, role, propagate in state.acl.entries(node, start_path, exact=exact):
        if not see_all:
            owner, token_name = split_authid(ugid)
            if token_name is None or owner != userid:
                continue
        result.append({"path": entry_path, "ugid": ugid, "ugid_type": "user", "propagate": propagate, "roleid": role})
    return result


def update_acl(req: Request, params: dict[str, Any]) -> Any:
    state, current = req.state, req.caller
    path, role = params["path"], params["role"]
    auth_id = params.get("auth-id")
    group = params.get("group")
    if not state.lookup_privs(current, ACL_PATH_ACCESS) & acl.PERMISSIONS_MODIFY:
        if group is not None:
            raise ApiError("Unprivileged users are not allowed to create group ACL item.")
        if auth_id is None:
            raise ApiError("Unprivileged user needs to provide auth_id to update ACL item.")
        if is_token(current):
            raise ApiError("Unprivileged API tokens can't set ACL items.")
        if not is_token(auth_id):
            raise ApiError("Unprivileged users can only set ACL items for API tokens.")
        if split_authid(auth_id)[0] != split_authid(current)[0]:
            raise ApiError("Unprivileged users can only set ACL items for their own API tokens.")
    state.check_digest(ACL_CONFIG, params.get("digest"))
    propagate = params.get("propagate", True)
    delete = params.get("delete", False)
    if group is not None:
        raise ApiError("parameter 'group' - groups are currently not supported.")
    if auth_id is None:
        raise ApiError("missing 'userid' or 'group' parameter.")
    if not delete:
        # Deleting is allowed for unknown auth-ids and invalid paths.
        known = auth_id in state.tokens if is_token(auth_id) else auth_id in state.users
        if not known:
            raise ApiError(f"no such {'API token' if is_token(auth_id) else 'user'}.")
        try:
            acl.check_acl_path(path)
        except ValueError as exc:
            raise ApiError(str(exc)) from None
        state.acl.insert(path, auth_id, role, propagate)
    else:
        state.acl.delete(path, auth_id, role)
    state.saved(ACL_CONFIG)
    return None
