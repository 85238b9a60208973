"""/access/users: list, create, read, update, delete."""

from __future__ import annotations

from typing import Any

from pbssim import acl
from pbssim.endpoints.access.base import ACL_CONFIG, USER_CONFIG, USERS_PATH
from pbssim.router import Request
from pbssim.state import ApiError, State, User, hash_password, split_authid


def list_users(req: Request, params: dict[str, Any]) -> Any:
    state, auth_id = req.state, req.caller
    userid = split_authid(auth_id)[0]
    see_all = bool(state.lookup_privs(auth_id, USERS_PATH) & acl.SYS_AUDIT)
    include_tokens = params.get("include_tokens", False)
    result = []
    users = state.users.values() if see_all else [u for u in (state.users.get(userid),) if u is not None]
    for user in users:
        item = user.to_api()
        if include_tokens:
            tokens = state.tokens_by_user.get(user.userid)
            if tokens:
                item["tokens"] = [token.to_api() for token in tokens.values()]
        result.append(item)
    req.attributes["digest"] = state.digest(USER_CONFIG)
    return result


def create_user(req: Request, params: dict[str, Any]) -> Any:
    state = req.state
    userid = params["userid"]
    if userid in state.users:
        raise ApiError(f"user '{userid}' already exists.")
    realm = userid.rpartition("@")[2]
    if realm not in state.realms:
        raise ApiError(f"unknown realm '{realm}'")
    state.users[userid] = User(
        userid,
        comment=params.get("comment"),
        enable=params.get("enable"),
        expire=params.get("expire"),
        firstname=params.get("firstname"),
        lastname=params.get("lastname"),
        email=params.get("email"),
    )
    state.saved(USER_CONFIG)
    password = params.get("password")
    if password is not None:
        # The user is saved before this check, as in PBS.
        if realm == "pam" and not state.is_superuser(req.caller):
            raise ApiError("only superuser can edit pam credentials!")
        state.passwords[userid] = hash_password(password)
    return None


def _lookup_user(state: State, userid: str) -> User:
    user = state.users.get(userid)
    if user is None:
        raise ApiError(f"no such user '{userid}'")
    return user


def read_user(req: Request, params: dict[str, Any]) -> Any:
    user = _lookup_user(req.state, params["userid"])
    req.attributes["digest"] = req.state.digest(USER_CONFIG)
    return user.to_api()


def _apply_text(value: str) -> str | None:
    return value or None


def update_user(req: Request, params: dict[str, Any]) -> Any:
    state = req.state
    state.check_digest(USER_CONFIG, params.get("digest"))
    user = _lookup_user(state, params["userid"])
    for prop in params.get("delete", []):
        setattr(user, prop, None)
    if "comment" in params:
        user.comment = params["comment"].strip() or None
    if "enable" in params:
        user.enable = None if params["enable"] else False
    if "expire" in params:
        user.expire = params["expire"] if params["expire"] > 0 else None
    for key in ("firstname", "lastname", "email"):
        if key in params:
            setattr(user, key, _apply_text(params[key]))
    # "password" is accepted and ignored (PUT /access/password changes passwords).
    state.saved(USER_CONFIG)
    return None


def delete_user(req: Request, params: dict[str, Any]) -> Any:
    """Removes the user, its password and its tokens with their ACL entries, but not the
    ACL entries of the user itself."""
    state = req.state
    userid = params["userid"]
    state.check_digest(USER_CONFIG, params.get("digest"))
    if userid not in state.users:
        raise ApiError(f"user '{userid}' does not exist.")
    del state.users[userid]
    state.passwords.pop(userid, None)
    tokens = list(state.tokens_by_user.get(userid, {}).values())
    for token in tokens:
        state.acl.delete_authid(token.tokenid)
        state.remove_token(token.tokenid)
    state.saved(USER_CONFIG)
    if tokens:
        state.saved(ACL_CONFIG)
    return None
