"""What a restore token may do on PBS, checked against ``/access/permissions``.

A restore token is ``<slug>@pbs!restore-<name>`` with ``DatastoreReader`` on the tenant's
namespace path. It must be able to read and list everything in that namespace
(Datastore.Read + Datastore.Audit, propagating) and nothing else: no Backup, Prune,
Modify, and no right outside the namespace. Used by the one restore token service
(tenants.services.restore_tokens), for staff and clients alike, right after a token is created.
"""

from __future__ import annotations

from typing import Any

RESTORE_ROLE = "DatastoreReader"
REQUIRED_PRIVILEGES = frozenset({"Datastore.Read", "Datastore.Audit"})
# DatastoreReader also carries Verify; anything beyond these three is refused.
ALLOWED_PRIVILEGES = frozenset({"Datastore.Read", "Datastore.Audit", "Datastore.Verify"})


def _in_namespace(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def restore_privilege_problems(privileges: dict[str, dict[str, bool]], *, acl_path: str) -> list[str]:
    """Why the effective rights of a restore token are not as designed (empty: fine).

    ``privileges`` is ``/access/permissions`` output: ``{path: {privilege: propagates}}``.
    """
    problems: list[str] = []
    on_namespace = privileges.get(acl_path, {})
    for priv in sorted(REQUIRED_PRIVILEGES):
        if priv not in on_namespace:
            problems.append(f"missing {priv} on {acl_path}")
        elif not on_namespace[priv]:
            problems.append(f"{priv} on {acl_path} does not reach the sub-namespaces")
    for path, privs in sorted(privileges.items()):
        if not privs:
            continue
        if not _in_namespace(path, acl_path):
            problems.append(f"has rights outside the namespace: {path} {sorted(privs)}")
            continue
        extra = sorted(set(privs) - ALLOWED_PRIVILEGES)
        if extra:
            problems.append(f"has more than read rights on {path}: {', '.join(extra)}")
    return problems


def restore_token_effective_privileges(client: Any, tokenid: str, acl_path: str) -> dict[str, dict[str, bool]]:
    """The token's rights everywhere plus on the namespace path (two reads)."""
    everywhere = dict(client.permissions_get(auth_id=tokenid))
    everywhere.update(client.permissions_get(auth_id=tokenid, path=acl_path))
    return {path: dict(privs) for path, privs in everywhere.items() if privs}
