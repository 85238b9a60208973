"""The simulated PBS's state: users, tokens, ACL, datastores, namespaces, backups, jobs, tasks.

Everything lives in dicts keyed the way requests look things up, so a request costs
the same with 5 tenants or 5,000. Secrets are kept only as salted hashes."""

from __future__ import annotations

from pbssim.state.base import (
    BACKUP_TYPES,
    ROOT_USERID,
    ApiError,
    check_password,
    hash_password,
    is_token,
    split_authid,
)
from pbssim.state.core import (
    State,
)
from pbssim.state.prune import (
    compute_prune,
)
from pbssim.state.records import (
    Datastore,
    Group,
    PruneJob,
    Snapshot,
    Task,
    Token,
    User,
    ns_acl_path,
    ns_components,
    ns_depth,
    ns_parent,
)
from pbssim.state.units import (
    escape_unit,
    unescape_unit,
)

__all__ = [
    "BACKUP_TYPES",
    "ROOT_USERID",
    "ApiError",
    "Datastore",
    "Group",
    "PruneJob",
    "Snapshot",
    "State",
    "Task",
    "Token",
    "User",
    "check_password",
    "compute_prune",
    "escape_unit",
    "hash_password",
    "is_token",
    "ns_acl_path",
    "ns_components",
    "ns_depth",
    "ns_parent",
    "split_authid",
    "unescape_unit",
]
