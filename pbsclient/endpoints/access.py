"""Endpoints: version, ping, users, tokens, ACL and permissions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pbsclient import validation as v
from pbsclient.endpoints.base import Call, _call, _delete_list, _list_of, _none
from pbsclient.models import (
    AclEntry,
    Token,
    TokenSecret,
    User,
    VersionInfo,
)


def version() -> Call[VersionInfo]:
    return _call("GET", "/version", (), VersionInfo.from_api)


def _pong(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("pong") is True


def ping() -> Call[bool]:
    return _call("GET", "/ping", (), _pong)


_USER_DELETABLE = ("comment", "firstname", "lastname", "email")


def user_list(include_tokens: bool) -> Call[list[User]]:
    # PBS spells this parameter with an underscore.
    return _call("GET", "/access/users", (), _list_of(User.from_api), {"include_tokens": include_tokens or None})


def user_get(userid: str) -> Call[User]:
    v.validate_userid(userid)
    return _call("GET", "/access/users/{}", (userid,), User.from_api)


def user_create(
    *,
    userid: str,
    comment: str | None,
    enable: bool,
    expire: int | None,
    email: str | None,
    firstname: str | None,
    lastname: str | None,
    password: str | None,
) -> Call[None]:
    v.validate_userid(userid)
    if password is not None and not 8 <= len(password) <= 64:
        raise v.PbsValidationError(f"a PBS password must be 8..64 characters, not {len(password)}")
    params = {
        "userid": userid,
        "comment": comment,
        "enable": None if enable else False,
        "expire": expire,
        "email": email,
        "firstname": firstname,
        "lastname": lastname,
        "password": password,
    }
    return _call("POST", "/access/users", (), _none, params, secrets=(password,) if password else ())


def user_update(
    userid: str,
    *,
    comment: str | None,
    enable: bool | None,
    expire: int | None,
    email: str | None,
    firstname: str | None,
    lastname: str | None,
    delete: Iterable[str] | None,
) -> Call[None]:
    v.validate_userid(userid)
    params = {
        "comment": comment,
        "enable": enable,
        "expire": expire,
        "email": email,
        "firstname": firstname,
        "lastname": lastname,
        "delete": _delete_list(delete, _USER_DELETABLE, "user"),
    }
    return _call("PUT", "/access/users/{}", (userid,), _none, params)


def user_delete(userid: str) -> Call[None]:
    v.validate_userid(userid)
    return _call("DELETE", "/access/users/{}", (userid,), _none)


def _tokenid(userid: str, name: str) -> str:
    v.validate_userid(userid)
    v.validate_token_name(name)
    return v.validate_tokenid(f"{userid}!{name}")


def token_list(userid: str) -> Call[list[Token]]:
    v.validate_userid(userid)
    return _call("GET", "/access/users/{}/token", (userid,), _list_of(Token.from_api))


def token_get(userid: str, name: str) -> Call[Token]:
    _tokenid(userid, name)
    return _call("GET", "/access/users/{}/token/{}", (userid, name), Token.from_api)


def token_create(userid: str, name: str, *, comment: str | None, expire: int | None, enable: bool) -> Call[TokenSecret]:
    _tokenid(userid, name)
    params = {"comment": comment, "expire": expire, "enable": None if enable else False}
    return _call("POST", "/access/users/{}/token/{}", (userid, name), TokenSecret.from_api, params)


def _regenerated_secret(data: Any) -> str | None:
    if isinstance(data, Mapping):
        secret = data.get("secret")
        return secret if isinstance(secret, str) else None
    return None


def token_update(
    userid: str,
    name: str,
    *,
    comment: str | None,
    enable: bool | None,
    expire: int | None,
    regenerate: bool,
    delete: Iterable[str] | None,
) -> Call[str | None]:
    _tokenid(userid, name)
    params = {
        "comment": comment,
        "enable": enable,
        "expire": expire,
        "regenerate": True if regenerate else None,
        "delete": _delete_list(delete, ("comment",), "token"),
    }
    return _call("PUT", "/access/users/{}/token/{}", (userid, name), _regenerated_secret, params)


def token_delete(userid: str, name: str) -> Call[None]:
    _tokenid(userid, name)
    return _call("DELETE", "/access/users/{}/token/{}", (userid, name), _none)


def acl_list(path: str | None, exact: bool) -> Call[list[AclEntry]]:
    if path is not None:
        v.validate_acl_path(path)
    return _call("GET", "/access/acl", (), _list_of(AclEntry.from_api), {"path": path, "exact": exact or None})


def acl_update(*, path: str, role: str, auth_id: str, propagate: bool, delete: bool) -> Call[None]:
    v.validate_acl_path(path)
    v.validate_role(role)
    v.validate_authid(auth_id)
    # The parameter is `auth-id`; PBS has had no `userid` parameter here since 0.9.5.
    params = {
        "path": path,
        "role": role,
        "auth-id": auth_id,
        "propagate": propagate,
        "delete": True if delete else None,
    }
    return _call("PUT", "/access/acl", (), _none, params)


def _permissions(data: Any) -> dict[str, dict[str, bool]]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    result: dict[str, dict[str, bool]] = {}
    for path, privs in data.items():
        if not isinstance(privs, Mapping):
            raise TypeError(f"privileges for '{path}' should be an object")
        result[str(path)] = {str(name): bool(flag) for name, flag in privs.items()}
    return result


def permissions_get(auth_id: str | None, path: str | None) -> Call[dict[str, dict[str, bool]]]:
    if auth_id is not None:
        v.validate_authid(auth_id)
    if path is not None:
        v.validate_acl_path(path)
    return _call("GET", "/access/permissions", (), _permissions, {"auth-id": auth_id, "path": path})
