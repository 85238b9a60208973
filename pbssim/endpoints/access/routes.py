"""The /access routes and their parameter schemas."""

from __future__ import annotations

from pbssim import acl
from pbssim.endpoints.access.acl import read_acl, update_acl
from pbssim.endpoints.access.base import (
    AUDIT_USERS,
    MODIFY_USERS,
    USERS_PATH,
    create_ticket,
    delete_ticket,
    list_domains,
    list_permissions,
    list_roles,
)
from pbssim.endpoints.access.tokens import delete_token, generate_token, list_tokens, read_token, update_token
from pbssim.endpoints.access.users import create_user, delete_user, list_users, read_user, update_user
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
from pbssim.router import ANYBODY, WORLD, Privilege, Router

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
