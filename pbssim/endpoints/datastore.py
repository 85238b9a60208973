"""/admin/datastore (list, status, groups, snapshots, gc, namespaces) and /status/datastore-usage.

Written from the reference, sections 5, 7 and 8 (``src/api2/admin/{datastore,namespace}.rs``,
``src/api2/status/mod.rs``).
"""

from __future__ import annotations

from typing import Any

from pbssim import acl
from pbssim.params import (
    BACKUP_ID,
    BACKUP_TYPE,
    DATASTORE,
    MAX_NAMESPACE_DEPTH,
    NAMESPACE,
    NS_MAX_DEPTH,
    SAFE_ID_RE,
    boolean,
    string,
)
from pbssim.router import ANYBODY, Privilege, Request, Router
from pbssim.state import (
    BACKUP_TYPES,
    ApiError,
    Datastore,
    Group,
    Snapshot,
    State,
    ns_acl_path,
    ns_components,
    ns_depth,
    ns_parent,
    split_authid,
)

AUDIT_OR_BACKUP = acl.DATASTORE_AUDIT | acl.DATASTORE_BACKUP


def check_namespace(ns: str) -> str:
    """``BackupNamespace::new``: the regex allows 8 components, the type only 7."""
    depth = ns_depth(ns)
    if depth > MAX_NAMESPACE_DEPTH:
        raise ApiError(f"namespace too deep, {MAX_NAMESPACE_DEPTH} >= max {MAX_NAMESPACE_DEPTH}")
    return ns


def check_backup_owner(owner: str, auth_id: str) -> bool:
    """``check_backup_owner``: the owner itself, or the user owning the owner token."""
    if owner == auth_id:
        return True
    owner_user, token_name = split_authid(owner)
    return token_name is not None and owner_user == auth_id


def _missing_namespace_error() -> ApiError:
    # Listing a namespace directory that does not exist fails in read_subdir (ENOENT).
    return ApiError("ENOENT: No such file or directory")


# --- datastore list and status ---------------------------------------------------------


def list_datastores(req: Request, params: dict[str, Any]) -> Any:
    """Stores with Audit/Backup on /datastore/{store}, plus stores where the caller only
    has rights below (those without comment). No rights: an empty list."""
    state, auth_id = req.state, req.caller
    result = []
    for name in sorted(state.datastores):
        store = state.datastores[name]
        privs = state.lookup_privs(auth_id, ("datastore", name))
        allowed = bool(privs & AUDIT_OR_BACKUP)
        if not allowed and not state.any_privs_below(auth_id, ("datastore", name), acl.NS_PRIVS_OK):
            continue
        item: dict[str, Any] = {"store": name}
        if allowed and store.comment is not None:
            item["comment"] = store.comment
        if "maintenance-mode" in store.config:
            item["maintenance"] = store.config["maintenance-mode"]
        item["mount-status"] = "nonremovable"
        item["backend-type"] = "filesystem"
        result.append(item)
    return result


def snapshot_counts(state: State, store: Datastore, owner_filter: str | None) -> dict[str, Any]:
    """``get_snapshots_count``: groups and snapshots per backup type, over all namespaces."""
    counts: dict[str, dict[str, int]] = {}
    for groups in store.groups.values():
        for group in groups.values():
            if not group.snapshots:
                continue
            if owner_filter is not None and not check_backup_owner(group.owner, owner_filter):
                continue
            entry = counts.setdefault(group.backup_type, {"groups": 0, "snapshots": 0})
            entry["groups"] += 1
            entry["snapshots"] += len(group.snapshots)
    return {kind: counts[kind] for kind in BACKUP_TYPES if kind in counts}


def datastore_status(req: Request, params: dict[str, Any]) -> Any:
    """File-system figures (0 unless Audit/Backup on the store itself); verbose adds counts
    (owner-filtered without Audit) and gc-status (with full statistics rights only)."""
    state, auth_id = req.state, req.caller
    name = params["store"]
    privs = state.lookup_privs(auth_id, ("datastore", name))
    if privs & AUDIT_OR_BACKUP:
        full = True
    elif privs & acl.DATASTORE_READ:
        full = False
    else:
        if not state.any_privs_below(auth_id, ("datastore", name), acl.NS_PRIVS_OK):
            raise ApiError("permission check failed", 403)
        full = False
    store = state.lookup_datastore(name)
    result: dict[str, Any] = {
        "total": store.total_bytes if full else 0,
        "used": store.used_bytes if full else 0,
        "avail": max(store.total_bytes - store.used_bytes, 0) if full else 0,
    }
    if params.get("verbose", False):
        owner_filter = None if privs & acl.DATASTORE_AUDIT else auth_id
        if full:
            result["gc-status"] = store.gc_status()
        result["counts"] = snapshot_counts(state, store, owner_filter)
    result["backend-type"] = "filesystem"
    return result


def datastore_usage(req: Request, params: dict[str, Any]) -> Any:
    """``GET /status/datastore-usage``: figures for stores with Audit/Backup; stores with
    rights only in some namespace appear with the figures left out."""
    state, auth_id = req.state, req.caller
    result: list[dict[str, Any]] = []
    for name in sorted(state.datastores):
        store = state.datastores[name]
        privs = state.lookup_privs(auth_id, ("datastore", name))
        if not privs & AUDIT_OR_BACKUP:
            if _can_access_any_namespace(state, store, auth_id):
                result.append({"store": name, "mount-status": "nonremovable", "backend-type": "filesystem"})
            continue
        result.append(
            {
                "store": name,
                "total": store.total_bytes,
                "used": store.used_bytes,
                "avail": max(store.total_bytes - store.used_bytes, 0),
                "gc-status": store.gc_status(),
                "mount-status": "nonremovable",
                "backend-type": "filesystem",
            }
        )
    return result


def _can_access_any_namespace(state: State, store: Datastore, auth_id: str) -> bool:
    """Is any existing namespace visible to the caller? Only namespaces at or below the
    caller's own ACL entries (or the root) can be, so only those are checked."""
    wanted = acl.NS_PRIVS_OK
    if state.lookup_privs(auth_id, ("datastore", store.name)) & wanted:
        return True
    owner = split_authid(auth_id)[0]
    candidates: set[str] = set()
    for entry_owner in {auth_id, owner}:
        for path in state.acl.paths_by_authid.get(entry_owner, ()):
            if len(path) > 2 and path[0] == "datastore" and path[1] == store.name:
                candidates.add("/".join(path[2:]))
    for top in sorted(candidates):
        for ns in store.subtree(top):
            if state.lookup_privs(auth_id, ns_acl_path(store.name, ns)) & wanted:
                return True
    return False


# --- groups and snapshots ----------------------------------------------------------------


def list_groups(req: Request, params: dict[str, Any]) -> Any:
    """One namespace level; Audit lists all groups, Backup only owned ones."""
    state, auth_id = req.state, req.caller
    name = params["store"]
    ns = check_namespace(params.get("ns", ""))
    privs = state.check_ns_privs_full(name, ns, auth_id, acl.DATASTORE_AUDIT, acl.DATASTORE_BACKUP)
    list_all = bool(privs & acl.DATASTORE_AUDIT)
    store = state.lookup_datastore(name)
    if not store.ns_exists(ns):
        raise _missing_namespace_error()
    result = []
    for key in sorted(store.groups_in(ns)):
        group = store.groups[ns][key]
        if not list_all and not check_backup_owner(group.owner, auth_id):
            continue
        if not group.snapshots:
            continue
        last = group.snapshots[max(group.snapshots)]
        item: dict[str, Any] = {
            "backup-type": group.backup_type,
            "backup-id": group.backup_id,
            "last-backup": last.backup_time,
            "backup-count": len(group.snapshots),
            "files": [filename for filename, _ in last.files],
            "owner": group.owner,
        }
        if group.comment:
            item["comment"] = group.comment.splitlines()[0]
        result.append(item)
    return result


def snapshot_item(group: Group, snap: Snapshot) -> dict[str, Any]:
    """``backup_info_to_snapshot_list_item``."""
    item: dict[str, Any] = {
        "backup-type": group.backup_type,
        "backup-id": group.backup_id,
        "backup-time": snap.backup_time,
    }
    if snap.manifest:
        if snap.comment:
            item["comment"] = snap.comment.splitlines()[0]
        if snap.verification is not None:
            item["verification"] = {"upid": snap.verify_upid, "state": snap.verification}
        item["files"] = [{"filename": filename, "crypt-mode": "none", "size": size} for filename, size in snap.files]
        item["size"] = snap.size
    else:
        item["files"] = [{"filename": filename} for filename, _ in snap.files]
    item["owner"] = group.owner
    item["protected"] = snap.protected
    return item


def list_snapshots(req: Request, params: dict[str, Any]) -> Any:
    """One namespace, optionally one type and/or id; Audit lists all, Backup only owned."""
    state, auth_id = req.state, req.caller
    name = params["store"]
    ns = check_namespace(params.get("ns", ""))
    privs = state.check_ns_privs_full(name, ns, auth_id, acl.DATASTORE_AUDIT, acl.DATASTORE_BACKUP)
    list_all = bool(privs & acl.DATASTORE_AUDIT)
    store = state.lookup_datastore(name)
    backup_type, backup_id = params.get("backup-type"), params.get("backup-id")
    groups = store.groups_in(ns)
    if backup_type is not None and backup_id is not None:
        group = groups.get((backup_type, backup_id))
        selected = [group] if group is not None else []
    elif backup_id is not None:
        selected = [groups[(kind, backup_id)] for kind in BACKUP_TYPES if (kind, backup_id) in groups]
    else:
        if not store.ns_exists(ns):
            raise _missing_namespace_error()
        selected = [groups[key] for key in sorted(groups) if backup_type is None or key[0] == backup_type]
    result = []
    for group in selected:
        if not list_all and not check_backup_owner(group.owner, auth_id):
            continue
        for backup_time in sorted(group.snapshots):
            result.append(snapshot_item(group, group.snapshots[backup_time]))
    return result


# --- garbage collection ----------------------------------------------------------------------


def gc_status(req: Request, params: dict[str, Any]) -> Any:
    state = req.state
    store = state.lookup_datastore(params["store"])
    result: dict[str, Any] = {"store": store.name}
    result.update(store.gc_status())
    schedule = store.config.get("gc-schedule")
    if schedule is not None:
        result["schedule"] = schedule
    if store.last_gc_upid is not None and store.last_gc_endtime is not None:
        result["last-run-endtime"] = store.last_gc_endtime
        result["last-run-state"] = "ok"
        result["duration"] = 0
    if schedule is not None:
        from pbssim.calendar import next_event, parse_calendar_event

        try:
            upcoming = next_event(parse_calendar_event(schedule), int(store.last_gc_endtime or req.now))
        except ValueError:
            upcoming = None
        if upcoming is not None:
            result["next-run"] = upcoming
    return result


def start_gc(req: Request, params: dict[str, Any]) -> Any:
    """Runs at once: the GC figures stay as configured; the run gets a UPID."""
    state = req.state
    store = state.lookup_datastore(params["store"])
    upid = state.new_task("garbage_collection", store.name, req.caller)
    store.last_gc_upid = upid
    store.last_gc_endtime = int(req.now)
    return upid


# --- namespaces ------------------------------------------------------------------------------


def list_namespaces(req: Request, params: dict[str, Any]) -> Any:
    """Depth-first from ``parent`` (listed first, even if it does not exist, when the caller
    has rights on it); only namespaces with Modify/Read/Backup/Audit are shown; 403 when
    nothing is visible and the caller has no rights on ``parent``."""
    state, auth_id = req.state, req.caller
    name = params["store"]
    parent = check_namespace(params.get("parent", ""))
    try:
        state.check_ns_privs_full(name, parent, auth_id, acl.NS_PRIVS_OK, 0)
        parent_access = True
    except ApiError:
        parent_access = False
    if name not in state.datastores and not parent_access:
        raise ApiError("permission check failed", 403)  # no leak of which stores exist
    store = state.lookup_datastore(name)
    result = []
    below = state.uniform_privs_below(auth_id, ns_acl_path(name, parent))
    for ns in store.iter_namespaces(parent, params.get("max-depth")):
        privs = state.lookup_privs(auth_id, ns_acl_path(name, ns)) if below is None or ns == parent else below
        if privs & acl.NS_PRIVS_OK:
            result.append({"ns": ns})
    if not result and not parent_access:
        raise ApiError("permission check failed", 403)
    return result


def create_namespace(req: Request, params: dict[str, Any]) -> Any:
    """Datastore.Modify on the parent; creating an existing namespace succeeds (200)."""
    state, auth_id = req.state, req.caller
    name = params["store"]
    parent = check_namespace(params.get("parent", ""))
    depth = ns_depth(parent)
    if depth >= MAX_NAMESPACE_DEPTH:
        raise ApiError(f"namespace too deep, {depth} >= max {MAX_NAMESPACE_DEPTH}")
    ns = "/".join([*ns_components(parent), params["name"]])
    state.check_ns_privs_full(name, parent, auth_id, acl.DATASTORE_MODIFY, 0)
    store = state.lookup_datastore(name)
    if not store.ns_exists(parent):
        raise ApiError(f"cannot create new namespace, parent {parent} doesn't already exists")
    store.ensure_namespace(ns)
    return ns


def delete_namespace(req: Request, params: dict[str, Any]) -> Any:
    """Datastore.Modify on the parent of ``ns``; without delete-groups only empty
    namespaces go. Returns the removal statistics (PBS >= 3.2.11)."""
    state, auth_id = req.state, req.caller
    name = params["store"]
    ns = check_namespace(params["ns"])
    if not ns:
        raise ApiError("Cannot create/delete root namespace!")
    state.check_ns_privs_full(name, ns_parent(ns), auth_id, acl.DATASTORE_MODIFY, 0)
    store = state.lookup_datastore(name)
    delete_groups = params.get("delete-groups", False)
    stats = {"protected-snapshots": 0, "removed-groups": 0, "removed-snapshots": 0}
    removed_all = True
    subtree = store.subtree(ns)
    if delete_groups:
        for each in subtree:
            groups = store.groups.get(each, {})
            for key, group in list(groups.items()):
                protected = 0
                for backup_time, snap in list(group.snapshots.items()):
                    if snap.protected:
                        protected += 1
                    else:
                        store.remove_snapshot(group, backup_time)
                        stats["removed-snapshots"] += 1
                if protected:
                    stats["protected-snapshots"] += protected
                    removed_all = False
                else:
                    del groups[key]
                    stats["removed-groups"] += 1
    # Remove bottom-up; a namespace with groups (or remaining children) stays.
    for each in sorted(subtree, key=ns_depth, reverse=True):
        if store.groups.get(each) or store.ns_children.get(each):
            removed_all = False
            continue
        store.remove_namespace(each)
    if not removed_all:
        if delete_groups:
            message = "group only partially deleted due to protected snapshots or active operations"
        else:
            message = "only partially deleted due to existing groups but `delete-groups` not true"
        if params.get("error-on-protected", True):
            raise ApiError(message)
    return stats


def register(router: Router) -> None:
    store = {"store": DATASTORE}
    router.add("GET", "/admin/datastore", list_datastores, permission=ANYBODY)
    router.add(
        "GET",
        "/admin/datastore/{store}/status",
        datastore_status,
        permission=ANYBODY,
        params={**store, "verbose": boolean(default=False)},
    )
    router.add(
        "GET",
        "/admin/datastore/{store}/groups",
        list_groups,
        permission=ANYBODY,
        params={**store, "ns": NAMESPACE},
    )
    router.add(
        "GET",
        "/admin/datastore/{store}/snapshots",
        list_snapshots,
        permission=ANYBODY,
        params={**store, "ns": NAMESPACE, "backup-type": BACKUP_TYPE, "backup-id": BACKUP_ID},
    )
    router.add(
        "GET",
        "/admin/datastore/{store}/gc",
        gc_status,
        params=store,
        permission=Privilege(("datastore", "{store}"), acl.DATASTORE_AUDIT),
    )
    router.add(
        "POST",
        "/admin/datastore/{store}/gc",
        start_gc,
        params=store,
        permission=Privilege(("datastore", "{store}"), acl.DATASTORE_MODIFY),
    )
    router.add(
        "GET",
        "/admin/datastore/{store}/namespace",
        list_namespaces,
        permission=ANYBODY,
        params={**store, "parent": NAMESPACE, "max-depth": NS_MAX_DEPTH.with_default(MAX_NAMESPACE_DEPTH)},
    )
    router.add(
        "POST",
        "/admin/datastore/{store}/namespace",
        create_namespace,
        permission=ANYBODY,
        params={**store, "name": string(pattern=SAFE_ID_RE, min_length=1, max_length=32), "parent": NAMESPACE},
    )
    router.add(
        "DELETE",
        "/admin/datastore/{store}/namespace",
        delete_namespace,
        permission=ANYBODY,
        params={
            **store,
            "ns": NAMESPACE.req(),
            "delete-groups": boolean(default=False),
            "error-on-protected": boolean(default=True),
        },
    )
    router.add("GET", "/status/datastore-usage", datastore_usage, permission=ANYBODY)
