"""/access/users/{userid}/token: list, generate, read, update, delete."""

from __future__ import annotations

from typing import Any

from pbssim.endpoints.access.base import ACL_CONFIG, USER_CONFIG
from pbssim.router import Request
from pbssim.state import ApiError, State, Token


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
