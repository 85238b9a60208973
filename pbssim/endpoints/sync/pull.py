"""/admin/sync status and run, and the pull itself (src/server/pull.rs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pbssim import acl
from pbssim.endpoints.sync.forms import GroupFilter, SyncExtension, _direction, apply_filters, parse_group_filter
from pbssim.endpoints.sync.remotes import PullError, RemoteClient
from pbssim.params import (
    MAX_NAMESPACE_DEPTH,
)
from pbssim.state import (
    ROOT_USERID,
    ApiError,
    Group,
    Snapshot,
    State,
    is_token,
    ns_acl_path,
    ns_components,
    ns_depth,
    split_authid,
)


class PullFailed(Exception):
    """The task's final error (its exit status)."""


def _map_prefix(ns: str, source_root: str, target_root: str) -> str:
    """``BackupNamespace::map_prefix``."""
    src = ns_components(ns)
    root = ns_components(source_root)
    if src[: len(root)] != root:
        raise PullFailed(f"namespace '{ns}' is not below '{source_root}'")
    mapped = ns_components(target_root) + src[len(root) :]
    if len(mapped) > MAX_NAMESPACE_DEPTH:
        raise PullFailed(f"mapped namespace '{'/'.join(mapped)}' is too deep")
    return "/".join(mapped)


def _owner_ok(owner: str, auth_id: str) -> bool:
    """``check_backup_owner``: the owner, or a token of the owning user."""
    if owner == auth_id:
        return True
    return is_token(owner) and split_authid(owner)[0] == auth_id


@dataclass
class _Pull:
    state: State
    job: dict[str, Any]
    client: RemoteClient
    log: list[str]
    owner: str
    filters: list[GroupFilter]
    errors: bool = False

    @property
    def store_name(self) -> str:
        return self.job["store"]


def pull(
    state: State, ext: SyncExtension, job: dict[str, Any], log: list[str], links: dict[str, Any]
) -> None:
    """Pull a job's snapshots from its remote into this state; raise PullFailed at the end
    when anything failed (PBS: ``sync failed with some errors.``)."""
    if _direction(job) == "push":
        raise PullFailed("push sync jobs are not simulated")
    if not job.get("remote"):
        raise PullFailed("local sync jobs are not simulated")
    remote_name = job["remote"]
    remote = ext.remotes.get(remote_name)
    if remote is None:
        raise PullFailed(f"no such remote '{remote_name}'")
    try:
        store = state.lookup_datastore(job["store"])
    except ApiError as exc:
        raise PullFailed(exc.message) from None
    owner = job.get("owner") or ROOT_USERID
    remote_store = job["remote-store"]
    remote_ns = job.get("remote-ns") or ""
    target_root = job.get("ns") or ""
    max_depth = job.get("max-depth")
    log.append(f"Starting datastore sync job '{remote_name}:{remote_store}'")
    log.append(f"sync datastore '{store.name}' from '{remote_name}/{remote_store}'")
    with RemoteClient(links, remote, ext.passwords.get(remote_name, "")) as client:
        ctx = _Pull(state, job, client, log, owner, [parse_group_filter(f) for f in job.get("group-filter", [])])
        try:
            if not remote_ns and max_depth == 0:
                namespaces = [""]
            else:
                listed = client.get(
                    f"/admin/datastore/{quote(remote_store)}/namespace",
                    {"parent": remote_ns or None, "max-depth": max_depth},
                )
                namespaces = sorted({item["ns"] if item.get("ns") else "" for item in listed or []})
                if remote_ns not in namespaces:
                    namespaces.insert(0, remote_ns)
        except PullError as exc:
            raise PullFailed(f"failed to list namespaces of remote '{remote_name}' - {exc}") from None
        synced: set[str] = set()
        for ns in namespaces:
            target_ns = _map_prefix(ns, remote_ns, target_root)
            log.append("----")
            log.append(
                f"Syncing datastore '{remote_store}', namespace '{ns or '/'}' into datastore "
                f"'{store.name}', namespace '{target_ns or '/'}'"
            )
            synced.add(target_ns)
            if not _check_and_create_ns(ctx, target_ns):
                ctx.errors = True
                continue
            _pull_ns(ctx, ns, target_ns)
        if job.get("remove-vanished"):
            _remove_vanished_ns(ctx, target_root, synced)
    if ctx.errors:
        raise PullFailed("sync failed with some errors.")
    log.append("Finished syncing")


def _check_and_create_ns(ctx: _Pull, target_ns: str) -> bool:
    store = ctx.state.datastores[ctx.store_name]
    if target_ns and not store.ns_exists(target_ns):
        parent = target_ns.rpartition("/")[0]
        if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, parent)) & acl.DATASTORE_MODIFY:
            ctx.log.append(
                f"Cannot sync into namespace '{target_ns}' - Creating {target_ns} not allowed - "
                f"permission check failed - missing Datastore.Modify on /{'/'.join(ns_acl_path(store.name, parent))}"
            )
            return False
        store.ensure_namespace(target_ns)
        ctx.log.append(f"Created namespace {target_ns}")
    if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, target_ns)) & acl.DATASTORE_BACKUP:
        ctx.log.append(
            f"Cannot sync into namespace '{target_ns or '/'}' - sync into {store.name}:{target_ns or '/'} "
            f"not allowed - permission check failed - missing Datastore.Backup"
        )
        return False
    return True


def _reader_privs(ctx: _Pull, ns: str) -> set[str]:
    """What the remote auth-id may do on the source namespace (asked over HTTP, as the
    reader protocol's check would decide it)."""
    path = "/" + "/".join(ns_acl_path(ctx.job["remote-store"], ns))
    perms = ctx.client.get("/access/permissions", {"path": path}) or {}
    return set((perms.get(path) or {}).keys())


def _pull_ns(ctx: _Pull, ns: str, target_ns: str) -> None:
    remote_store = ctx.job["remote-store"]
    try:
        groups = ctx.client.get(f"/admin/datastore/{quote(remote_store)}/groups", {"ns": ns or None}) or []
        reader = _reader_privs(ctx, ns)
    except PullError as exc:
        ctx.log.append(f"Encountered errors while syncing namespace '{ns or '/'}' - {exc}")
        ctx.errors = True
        return
    groups = sorted(groups, key=lambda g: (g["backup-type"], g["backup-id"]))
    wanted = [g for g in groups if apply_filters(ctx.filters, g["backup-type"], g["backup-id"])]
    ctx.log.append(f"found {len(wanted)} groups to sync (out of {len(groups)} total)")
    store = ctx.state.datastores[ctx.store_name]
    seen: set[tuple[str, str]] = set()
    for item in wanted:
        key = (item["backup-type"], item["backup-id"])
        seen.add(key)
        label = f"{key[0]}/{key[1]}"
        local = store.groups_in(target_ns).get(key)
        if local is not None and local.owner != ctx.owner:
            ctx.log.append(f"sync group {label} failed - owner check failed ({ctx.owner} != {local.owner})")
            ctx.errors = True
            continue
        if "Datastore.Read" not in reader:
            if "Datastore.Backup" not in reader:
                ctx.log.append(
                    f"sync group {label} failed - no permissions on /{'/'.join(ns_acl_path(remote_store, ns))}"
                )
                ctx.errors = True
                continue
            if not _owner_ok(item.get("owner") or "", ctx.client._auth_id):
                ctx.log.append(f"sync group {label} failed - backup owner check failed!")
                ctx.errors = True
                continue
        try:
            _pull_group(ctx, ns, target_ns, key)
        except PullError as exc:
            ctx.log.append(f"sync group {label} failed - {exc}")
            ctx.errors = True
    if ctx.job.get("remove-vanished"):
        for key, group in list(store.groups_in(target_ns).items()):
            if key in seen or not _owner_ok(group.owner, ctx.owner):
                continue
            if not apply_filters(ctx.filters, *key):
                continue
            ctx.log.append(f"delete vanished group '{key[0]}/{key[1]}'")
            protected = False
            for when, snap in list(group.snapshots.items()):
                if snap.protected:
                    protected = True
                    continue
                store.remove_snapshot(group, when)
            if protected:
                ctx.log.append(f"kept some protected snapshots of group '{key[0]}/{key[1]}'")
            else:
                store.groups[target_ns].pop(key, None)


def _snapshot_encrypted(item: dict[str, Any]) -> bool:
    files = item.get("files") or []
    return bool(files) and all((f.get("crypt-mode") if isinstance(f, dict) else None) == "encrypt" for f in files)


def _pull_group(ctx: _Pull, ns: str, target_ns: str, key: tuple[str, str]) -> None:
    remote_store = ctx.job["remote-store"]
    listed = (
        ctx.client.get(
            f"/admin/datastore/{quote(remote_store)}/snapshots",
            {"ns": ns or None, "backup-type": key[0], "backup-id": key[1]},
        )
        or []
    )
    label = f"{key[0]}/{key[1]}"
    snapshots = []
    for item in listed:
        if item.get("size") is None:
            ctx.log.append(f"skipping snapshot {label}/{item['backup-time']} - in-progress backup")
            continue
        snapshots.append(item)
    snapshots.sort(key=lambda s: s["backup-time"])
    store = ctx.state.datastores[ctx.store_name]
    local = store.groups_in(target_ns).get(key)
    finished = [t for t, s in (local.snapshots.items() if local else []) if s.manifest]
    last_sync = max(finished) if finished else None
    transfer_last = ctx.job.get("transfer-last")
    cutoff = max(0, len(snapshots) - transfer_last) if transfer_last else 0
    source_times = {s["backup-time"] for s in snapshots}
    skipped_old = skipped_last = 0
    for pos, item in enumerate(snapshots):
        when = item["backup-time"]
        if last_sync is not None and last_sync > when:
            skipped_old += 1
            continue
        if pos < cutoff and last_sync != when:
            skipped_last += 1
            continue
        verification = item.get("verification") or {}
        state = verification.get("state") if isinstance(verification, dict) else None
        if ctx.job.get("verified-only") and state != "ok":
            ctx.log.append(f"skipping snapshot {label}/{when} - not verified")
            continue
        if ctx.job.get("encrypted-only") and not _snapshot_encrypted(item):
            ctx.log.append(f"skipping snapshot {label}/{when} - not encrypted")
            continue
        if local is None:
            local = Group(key[0], key[1], ctx.owner)
            store.groups.setdefault(target_ns, {})[key] = local
        files = [(f["filename"], f.get("size")) for f in item.get("files") or [] if isinstance(f, dict)] or [
            ("index.json.blob", item.get("size"))
        ]
        snap = Snapshot(
            backup_time=when,
            files=files,
            verification=state,
            comment=item.get("comment"),
        )
        old = local.snapshots.get(when)
        if old is not None:
            snap.protected = old.protected
        store.add_snapshot(target_ns, local, snap)
        ctx.log.append(f"sync snapshot {label}/{_iso(when)} done")
    if skipped_old:
        ctx.log.append(f"skipped: {skipped_old} snapshot(s) - older than the newest local snapshot")
    if skipped_last:
        ctx.log.append(f"skipped: {skipped_last} snapshot(s) - due to transfer-last")
    if ctx.job.get("remove-vanished") and local is not None:
        for when, snap in list(local.snapshots.items()):
            if when in source_times:
                continue
            if snap.protected:
                ctx.log.append(f"don't delete vanished snapshot {label}/{_iso(when)} (protected)")
                continue
            ctx.log.append(f"delete vanished snapshot {label}/{_iso(when)}")
            store.remove_snapshot(local, when)


def _remove_vanished_ns(ctx: _Pull, target_root: str, synced: set[str]) -> None:
    store = ctx.state.datastores[ctx.store_name]
    max_depth = ctx.job.get("max-depth")
    if max_depth is None:
        max_depth = MAX_NAMESPACE_DEPTH - ns_depth(ctx.job.get("remote-ns") or "")
    if not store.ns_exists(target_root):
        return
    local = [ns for ns in store.iter_namespaces(target_root, max_depth) if store.ns_exists(ns)]
    for ns in sorted(local, key=lambda n: -len(ns_components(n))):
        if ns == target_root or ns in synced or not ns:
            continue
        visible = acl.DATASTORE_BACKUP | acl.DATASTORE_AUDIT
        if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, ns)) & visible:
            continue
        parent = ns.rpartition("/")[0]
        if not ctx.state.lookup_privs(ctx.owner, ns_acl_path(store.name, parent)) & acl.DATASTORE_MODIFY:
            ctx.log.append(f"Failed to remove namespace {ns} - permission check failed")
            ctx.errors = True
            continue
        protected = any(
            snap.protected
            for sub in store.subtree(ns)
            for group in store.groups_in(sub).values()
            for snap in group.snapshots.values()
        )
        if protected:
            ctx.log.append(f"Did not remove namespace {ns} - protected snapshots remain")
            continue
        for sub in store.subtree(ns):
            for group in list(store.groups_in(sub).values()):
                for when in list(group.snapshots):
                    store.remove_snapshot(group, when)
        store.remove_namespace(ns)
        ctx.log.append(f"Removed namespace {ns}")


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
