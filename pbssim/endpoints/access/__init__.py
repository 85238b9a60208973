"""/access: users, API tokens, ACL, permissions, roles, realms, tickets.

Written from PBS's ``src/api2/access/{user,acl,mod}.rs`` behaviour as documented in
the reference (sections 1 to 4); texts are PBS's own."""

from __future__ import annotations

from pbssim.endpoints.access.acl import (
    read_acl,
    update_acl,
)
from pbssim.endpoints.access.base import (
    ACL_CONFIG,
    ACL_PATH_ACCESS,
    AUDIT_USERS,
    DEFAULT_PERMISSION_PATHS,
    MODIFY_USERS,
    USER_CONFIG,
    USERS_PATH,
    create_ticket,
    delete_ticket,
    list_domains,
    list_permissions,
    list_roles,
)
from pbssim.endpoints.access.routes import (
    TOKEN_PARAMS,
    USER_FIELDS,
    USERID_PARAM,
    register,
)
from pbssim.endpoints.access.tokens import (
    delete_token,
    generate_token,
    list_tokens,
    read_token,
    update_token,
)
from pbssim.endpoints.access.users import (
    create_user,
    delete_user,
    list_users,
    read_user,
    update_user,
)

__all__ = [
    "ACL_CONFIG",
    "ACL_PATH_ACCESS",
    "AUDIT_USERS",
    "DEFAULT_PERMISSION_PATHS",
    "MODIFY_USERS",
    "TOKEN_PARAMS",
    "USERID_PARAM",
    "USERS_PATH",
    "USER_CONFIG",
    "USER_FIELDS",
    "create_ticket",
    "create_user",
    "delete_ticket",
    "delete_token",
    "delete_user",
    "generate_token",
    "list_domains",
    "list_permissions",
    "list_roles",
    "list_tokens",
    "list_users",
    "read_acl",
    "read_token",
    "read_user",
    "register",
    "update_acl",
    "update_token",
    "update_user",
]
