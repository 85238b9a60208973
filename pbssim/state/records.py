"""The records the simulator keeps: users, tokens, datastores with groups and snapshots, prune jobs, tasks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbssim.params import KEEP_NAMES, MAX_NAMESPACE_DEPTH
from pbssim.state.base import split_authid

if TYPE_CHECKING:  # annotations only: the state holds these records
    pass



@dataclass
class User:
    """A user.cfg ``user`` section; ``None`` fields are omitted from replies."""

    userid: str
    comment: str | None = None
    enable: bool | None = None
    expire: int | None = None
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"userid": self.userid}
        for key in ("comment", "enable", "expire", "firstname", "lastname", "email"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class Token:
    """A user.cfg ``token`` section (the secret's hash lives in ``State.token_hashes``)."""

    tokenid: str
    comment: str | None = None
    enable: bool | None = None
    expire: int | None = None

    @property
    def name(self) -> str:
        return split_authid(self.tokenid)[1] or ""

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tokenid": self.tokenid}
        for key in ("comment", "enable", "expire"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass
class Snapshot:
    """One backup snapshot. Without a manifest (running or broken backup) it has no
    ``size`` and its files have no sizes."""

    backup_time: int
    files: list[tuple[str, int | None]]  # (file name, size)
    manifest: bool = True
    verification: str | None = None  # "ok" | "failed"
    verify_upid: str | None = None
    protected: bool = False
    comment: str | None = None

    @property
    def size(self) -> int | None:
        """Logical size: the sum of the manifest's file sizes (index.json.blob included)."""
        if not self.manifest:
            return None
        return sum(size or 0 for _, size in self.files)

    def index_file_count(self) -> int:
        return sum(1 for name, _ in self.files if name.endswith((".fidx", ".didx")))


@dataclass
class Group:
    """A backup group (type/id) inside one namespace, with its owner."""

    backup_type: str
    backup_id: str
    owner: str
    comment: str | None = None
    snapshots: dict[int, Snapshot] = field(default_factory=dict)


@dataclass
class Datastore:
    """A datastore: its config, file-system figures, GC figures, namespaces and groups."""

    name: str
    path: str
    comment: str | None = None
    total_bytes: int = 4 * 2**40
    used_bytes: int = 0
    gc_index_data_bytes: int | None = None
    gc_disk_bytes: int | None = None
    # Other DataStoreConfig properties (gc-schedule, notify, tuning, ...), as given.
    config: dict[str, Any] = field(default_factory=dict)
    # Namespace tree: namespace -> names of its direct children. The root "" always exists.
    ns_children: dict[str, set[str]] = field(default_factory=lambda: {"": set()})
    groups: dict[str, dict[tuple[str, str], Group]] = field(default_factory=dict)
    logical_bytes: int = 0
    index_files: int = 0
    snapshot_count: int = 0
    last_gc_upid: str | None = None
    last_gc_endtime: int | None = None

    def config_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": self.path}
        if self.comment is not None:
            out["comment"] = self.comment
        out.update(self.config)
        return out

    # -- namespaces ----------------------------------------------------------------------

    def ns_exists(self, ns: str) -> bool:
        return ns in self.ns_children

    def ensure_namespace(self, ns: str) -> None:
        """Create ``ns`` and its missing ancestors (``create_dir_all``)."""
        parent = ""
        for comp in ns_components(ns):
            child = f"{parent}/{comp}" if parent else comp
            if child not in self.ns_children:
                self.ns_children[parent].add(comp)
                self.ns_children[child] = set()
            parent = child

    def iter_namespaces(self, parent: str, max_depth: int | None) -> Iterator[str]:
        """``ListNamespacesRecursive``: ``parent`` first (even if it does not exist),
        then its descendants depth-first, ``max_depth`` levels below it."""
        if max_depth is None:
            max_depth = MAX_NAMESPACE_DEPTH - ns_depth(parent)
        yield parent
        if max_depth <= 0 or parent not in self.ns_children:
            return
        # Depth-first, children in name order (a real PBS uses directory order).
        stack = [(parent, 1, iter(sorted(self.ns_children[parent])))]
        while stack:
            base, depth, children = stack[-1]
            name = next(children, None)
            if name is None:
                stack.pop()
                continue
            ns = f"{base}/{name}" if base else name
            yield ns
            if depth < max_depth:
                stack.append((ns, depth + 1, iter(sorted(self.ns_children.get(ns, ())))))

    def subtree(self, ns: str) -> list[str]:
        """``ns`` and all namespaces below it (existing ones only)."""
        if ns not in self.ns_children:
            return []
        return list(self.iter_namespaces(ns, MAX_NAMESPACE_DEPTH))

    def remove_namespace(self, ns: str) -> None:
        for child in list(self.ns_children.get(ns, ())):
            self.remove_namespace(f"{ns}/{child}")
        self.ns_children.pop(ns, None)
        self.groups.pop(ns, None)
        parent, _, name = ns.rpartition("/")
        siblings = self.ns_children.get(parent)
        if siblings is not None:
            siblings.discard(name)

    # -- groups and snapshots -------------------------------------------------------------

    def groups_in(self, ns: str) -> dict[tuple[str, str], Group]:
        return self.groups.get(ns, {})

    def add_snapshot(self, ns: str, group: Group, snap: Snapshot) -> None:
        old = group.snapshots.get(snap.backup_time)
        if old is not None:
            self._forget_stats(old)
        group.snapshots[snap.backup_time] = snap
        self.logical_bytes += snap.size or 0
        self.index_files += snap.index_file_count()
        self.snapshot_count += 1

    def remove_snapshot(self, group: Group, backup_time: int) -> None:
        snap = group.snapshots.pop(backup_time, None)
        if snap is not None:
            self._forget_stats(snap)

    def _forget_stats(self, snap: Snapshot) -> None:
        self.logical_bytes -= snap.size or 0
        self.index_files -= snap.index_file_count()
        self.snapshot_count -= 1

    def gc_status(self) -> dict[str, Any]:
        """GarbageCollectionStatus figures (from the last simulated GC)."""
        index_data = self.gc_index_data_bytes if self.gc_index_data_bytes is not None else self.logical_bytes
        disk = self.gc_disk_bytes if self.gc_disk_bytes is not None else self.used_bytes
        status: dict[str, Any] = {}
        if self.last_gc_upid is not None:
            status["upid"] = self.last_gc_upid
        status.update(
            {
                "index-file-count": self.index_files,
                "index-data-bytes": index_data,
                "disk-bytes": disk,
                "disk-chunks": disk // (4 * 2**20) if disk else 0,
                "removed-bytes": 0,
                "removed-chunks": 0,
                "pending-bytes": 0,
                "pending-chunks": 0,
                "removed-bad": 0,
                "still-bad": 0,
            }
        )
        return status


def ns_components(ns: str) -> list[str]:
    return [comp for comp in ns.split("/") if comp] if ns else []


def ns_depth(ns: str) -> int:
    return len(ns_components(ns))


def ns_parent(ns: str) -> str:
    return ns.rpartition("/")[0]


def ns_acl_path(store: str, ns: str) -> tuple[str, ...]:
    """``BackupNamespace::acl_path``: ``datastore/<store>/<ns components>``."""
    return ("datastore", store, *ns_components(ns))


@dataclass
class PruneJob:
    """A prune.cfg job (config in PBS key names) plus its last-run state."""

    config: dict[str, Any]
    last_run_upid: str | None = None
    last_run_state: str | None = None
    last_run_endtime: int | None = None

    @property
    def id(self) -> str:
        return str(self.config["id"])

    @property
    def store(self) -> str:
        return str(self.config["store"])

    @property
    def ns(self) -> str:
        return str(self.config.get("ns") or "")

    def acl_path(self) -> tuple[str, ...]:
        return ns_acl_path(self.store, self.ns)

    def to_api(self) -> dict[str, Any]:
        order = ("id", "store", "schedule", "comment", "disable", "ns", "max-depth", *KEEP_NAMES)
        out = {key: self.config[key] for key in order if key in self.config}
        if out.get("disable") is False:
            del out["disable"]  # serde skips a false ``disable``
        return out


@dataclass
class Task:
    """A finished worker task (the simulator runs every task to completion at once)."""

    upid: str
    worker_type: str
    worker_id: str
    auth_id: str
    starttime: int
    endtime: int
    exitstatus: str = "OK"
