"""/access: users, API tokens, ACL, permissions, roles, realms, tickets.

Written from PBS's ``src/api2/access/{user,acl,mod}.rs`` behaviour as documented in
the reference (sections 1 to 4); texts are PBS's own.
"""

from __future__ import annotations

from typing import Any

from pbssim import acl
from pbssim.params import (
    ACL_PATH,
    AUTHID,
    COMMENT,
    DIGEST,
    ENABLE,
    EXPIRE,
    FIRST_LAST_EMAIL,
    GROUP_ID,
    PASSWORD,
    ROLE,
    SINGLE_LINE_COMMENT_RE,
    TOKEN_NAME,
    USERID,
    array,
    boolean,
    integer,
    string,
)
from pbssim.router import ANYBODY, WORLD, Or, Privilege, Request, Router, UserParam
from pbssim.state import ApiError, State, Token, User, check_password, hash_password, is_token, split_authid

USERS_PATH = ("access", "users")
ACL_PATH_ACCESS = ("access", "acl")
USER_CONFIG = "user"
ACL_CONFIG = "acl"

MODIFY_USERS = Or((Privilege(USERS_PATH, acl.PERMISSIONS_MODIFY), UserParam("userid")))
AUDIT_USERS = Or((Privilege(USERS_PATH, acl.SYS_AUDIT), UserParam("userid")))


# --- realms, roles, permissions ------------------------------------------------------


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


# --- tickets --------------------------------------------------------------------------


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


# --- users -----------------------------------------------------------------------------


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


# --- tokens ------------------------------------------------------------------------------


def list_tokens(req: Request, params: dict[str, Any]) -> Any:
    state = req.state
    tokens = state.tokens_by_user.get(params["userid"], {})
    req.attributes["digest"] = state.digest(USER_CONFIG)
    return [{"token-name": name, **token.to_api()} for name, token in tokens.items()]


def _tokenid(params: dict[str, Any]) -> str:
    return f"{params['userid']}!{params['token-name']}"


def _lookup_token(state: State, tokenid: str) -> Token:
    token = state.tokens.get(tokenid)
    if token is None:
        raise ApiError(f"no such token '{tokenid}'")
    return token


def read_token(req: Request, params: dict[str, Any]) -> Any:
    token = _lookup_token(req.state, _tokenid(params))
    req.attributes["digest"] = req.state.digest(USER_CONFIG)
    return token.to_api()


def generate_token(req: Request, params: dict[str, Any]) -> Any:
    """The secret is returned once; only its hash is kept. The user is not checked."""
    state = req.state
    state.check_digest(USER_CONFIG, params.get("digest"))
    userid, name = params["userid"], params["token-name"]
    tokenid = _tokenid(params)
    if tokenid in state.tokens:
        raise ApiError(f"token '{name}' for user '{userid}' already exists.")
    if len(tokenid) > 64:
        # PBS only notices when writing user.cfg (the section id schema is 3..64 chars).
        raise ApiError(
            "writing '/etc/proxmox-backup/user.cfg' failed: syntax error in section identifier: "
            "value may only be 64 characters long"
        )
    state.add_token(
        Token(tokenid, comment=params.get("comment"), enable=params.get("enable"), expire=params.get("expire"))
    )
    secret = state.set_token_secret(tokenid)
    state.saved(USER_CONFIG)
    return {"tokenid": tokenid, "value": secret}


def update_token(req: Request, params: dict[str, Any]) -> Any:
    state = req.state
    state.check_digest(USER_CONFIG, params.get("digest"))
    tokenid = _tokenid(params)
    token = _lookup_token(state, tokenid)
    if "comment" in params.get("delete", []):
        token.comment = None
    if "comment" in params:
        token.comment = params["comment"].strip() or None
    if "enable" in params:
        token.enable = None if params["enable"] else False
    if "expire" in params:
        token.expire = params["expire"] if params["expire"] > 0 else None
    secret = state.set_token_secret(tokenid) if params.get("regenerate", False) else None
    state.saved(USER_CONFIG)
    return {"secret": secret} if secret is not None else None


def delete_token(req: Request, params: dict[str, Any]) -> Any:
    """Also removes the token's ACL entries."""
    state = req.state
    state.check_digest(USER_CONFIG, params.get("digest"))
    userid, name = params["userid"], params["token-name"]
    tokenid = _tokenid(params)
    if tokenid not in state.tokens:
        raise ApiError(f"token '{name}' of user '{userid}' does not exist.")
    state.remove_token(tokenid)
    state.acl.delete_authid(tokenid)
    state.saved(USER_CONFIG)
    state.saved(ACL_CONFIG)
    return None


# --- ACL ---------------------------------------------------------------------------------


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


# --- routes --------------------------------------------------------------------------------

USERID_PARAM = USERID
TOKEN_PARAMS = {"userid": USERID, "token-name": TOKEN_NAME}
USER_FIELDS = {
    "comment": COMMENT,
    "enable": ENABLE,
    "expire": EXPIRE,
    "firstname": FIRST_LAST_EMAIL,
    "lastname": FIRST_LAST_EMAIL,
    "email": FIRST_LAST_EMAIL,
}


def register(router: Router) -> None:
    router.add("GET", "/access/domains", list_domains, permission=WORLD)
    router.add("GET", "/access/roles", list_roles, permission=ANYBODY)
    router.add(
        "GET",
        "/access/permissions",
        list_permissions,
        permission=ANYBODY,
        params={"auth-id": AUTHID.opt(), "path": ACL_PATH.opt()},
    )
    router.add(
        "POST",
        "/access/ticket",
        create_ticket,
        permission=WORLD,
        envelope="ticket",
        params={
            "username": USERID,
            "password": string(optional=True),
            "tfa-challenge": string(optional=True),
            "path": string(optional=True),
            "privs": string(optional=True),
            "port": integer(minimum=0, maximum=65535, optional=True),
            "http-only": boolean(default=False),
        },
    )
    router.add("DELETE", "/access/ticket", delete_ticket, permission=WORLD)

    router.add(
        "GET",
        "/access/users",
        list_users,
        permission=ANYBODY,
        params={"include_tokens": boolean(default=False)},
    )
    router.add(
        "POST",
        "/access/users",
        create_user,
        permission=Privilege(USERS_PATH, acl.PERMISSIONS_MODIFY),
        params={"userid": USERID, "password": PASSWORD, **USER_FIELDS},
    )
    router.add("GET", "/access/users/{userid}", read_user, permission=AUDIT_USERS, params={"userid": USERID})
    router.add(
        "PUT",
        "/access/users/{userid}",
        update_user,
        permission=MODIFY_USERS,
        params={
            "userid": USERID,
            **USER_FIELDS,
            "password": string(pattern=SINGLE_LINE_COMMENT_RE, min_length=1, max_length=1024, optional=True),
            "delete": array(string(enum=("comment", "firstname", "lastname", "email"))),
            "digest": DIGEST,
        },
    )
    router.add(
        "DELETE",
        "/access/users/{userid}",
        delete_user,
        permission=MODIFY_USERS,
        params={"userid": USERID, "digest": DIGEST},
    )

    router.add("GET", "/access/users/{userid}/token", list_tokens, permission=AUDIT_USERS, params={"userid": USERID})
    token_path = "/access/users/{userid}/token/{token-name}"  # noqa: S105 - a URL, not a secret
    router.add("GET", token_path, read_token, permission=AUDIT_USERS, params=TOKEN_PARAMS)
    router.add(
        "POST",
        token_path,
        generate_token,
        permission=MODIFY_USERS,
        params={**TOKEN_PARAMS, "comment": COMMENT, "enable": ENABLE, "expire": EXPIRE, "digest": DIGEST},
    )
    router.add(
        "PUT",
        token_path,
        update_token,
        permission=MODIFY_USERS,
        params={
            **TOKEN_PARAMS,
            "comment": COMMENT,
            "enable": ENABLE,
            "expire": EXPIRE,
            "regenerate": boolean(default=False),
            "delete": array(string(enum=("comment",))),
            "digest": DIGEST,
        },
    )
    router.add("DELETE", token_path, delete_token, permission=MODIFY_USERS, params={**TOKEN_PARAMS, "digest": DIGEST})

    router.add(
        "GET",
        "/access/acl",
        read_acl,
        permission=ANYBODY,
        params={"path": ACL_PATH.opt(), "exact": boolean(default=False)},
    )
    router.add(
        "PUT",
        "/access/acl",
        update_acl,
        permission=ANYBODY,
        params={
            "path": ACL_PATH,
            "role": ROLE,
            "propagate": boolean(default=True),
            "auth-id": AUTHID.opt(),
            "group": GROUP_ID,
            "delete": boolean(),
            "digest": DIGEST,
        },
    )
