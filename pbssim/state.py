"""The simulated PBS's state: users, tokens, ACL, datastores, namespaces, backups, jobs, tasks.

Everything lives in dicts keyed the way requests look things up, so a request costs
the same with 5 tenants or 5,000. Secrets are kept only as salted hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pbssim.acl import ALL_PRIVS, AclTree, flatten, priv_names
from pbssim.params import KEEP_NAMES, MAX_NAMESPACE_DEPTH


class ApiError(Exception):
    """An error reply: PBS's status code and plain-text message.

    ``bail!`` in PBS is a 400; ``http_bail!`` keeps its explicit code.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


ROOT_USERID = "root@pam"
BACKUP_TYPES = ("ct", "host", "vm")


def split_authid(auth_id: str) -> tuple[str, str | None]:
    """(userid, token name or None). The token name starts at the first ``!`` after the
    realm's ``@``; the user name itself may contain ``@`` and ``!``."""
    at = auth_id.rfind("@")
    bang = auth_id.find("!", at + 1) if at >= 0 else -1
    if bang < 0:
        return auth_id, None
    return auth_id[:bang], auth_id[bang + 1 :]


def is_token(auth_id: str) -> bool:
    return split_authid(auth_id)[1] is not None


def _hash_secret(secret: str, salt: bytes) -> bytes:
    # Token secrets are random UUIDs (122 bits): one salted SHA-256 is enough and
    # keeps authentication cheap for benchmarks with thousands of requests.
    return hashlib.sha256(salt + secret.encode()).digest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 20_000)
    return f"pbkdf2_sha256$20000${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    _, rounds, salt_hex, digest_hex = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt_hex), int(rounds))
    return hmac.compare_digest(digest.hex(), digest_hex)


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


class State:
    """All of one simulated PBS's data, plus the privilege lookups PBS does on it."""

    def __init__(self, node: str = "localhost") -> None:
        self.node = node
        self.users: dict[str, User] = {
            ROOT_USERID: User(ROOT_USERID, comment="Superuser", enable=True, expire=0),
        }
        self.tokens: dict[str, Token] = {}
        self.tokens_by_user: dict[str, dict[str, Token]] = {}
        self.token_hashes: dict[str, tuple[bytes, bytes]] = {}
        self.passwords: dict[str, str] = {}
        self.acl = AclTree()
        self.realms: dict[str, tuple[str, str]] = {
            "pam": ("pam", "Linux PAM standard authentication"),
            "pbs": ("pbs", "Proxmox Backup authentication server"),
        }
        self.datastores: dict[str, Datastore] = {}
        self.prune_jobs: dict[str, PruneJob] = {}
        self.tasks: dict[str, Task] = {}
        self.generations: dict[str, int] = {}
        # Per-module state of pluggable endpoint modules (e.g. remotes and sync jobs),
        # and their hooks run when a datastore is deleted without keep-job-configs.
        self.extensions: dict[str, Any] = {}
        self.datastore_removed_hooks: list[Callable[[State, str], None]] = []
        self._digest_salt = os.urandom(8).hex()
        self._task_counter = 0
        self._pid = os.getpid() & 0xFFFFFFFF
        self._pstart = int(time.monotonic() * 100) & 0xFFFFFFFF

    # -- config digests ---------------------------------------------------------------------

    def digest(self, config: str) -> str:
        """A SHA-256 hex digest that changes whenever ``config`` is saved."""
        seed = f"{self._digest_salt}:{config}:{self.generations.get(config, 0)}"
        return hashlib.sha256(seed.encode()).hexdigest()

    def saved(self, config: str) -> None:
        self.generations[config] = self.generations.get(config, 0) + 1

    def check_digest(self, config: str, digest: str | None) -> None:
        """``detect_modified_configuration_file``."""
        if digest is not None and digest != self.digest(config):
            raise ApiError("detected modified configuration - file changed by other user? Try again.")

    # -- users, tokens, secrets -------------------------------------------------------------

    def add_token(self, token: Token) -> None:
        userid, name = split_authid(token.tokenid)
        self.tokens[token.tokenid] = token
        self.tokens_by_user.setdefault(userid, {})[name or ""] = token

    def remove_token(self, tokenid: str) -> None:
        userid, name = split_authid(tokenid)
        self.tokens.pop(tokenid, None)
        self.token_hashes.pop(tokenid, None)
        user_tokens = self.tokens_by_user.get(userid)
        if user_tokens is not None:
            user_tokens.pop(name or "", None)
            if not user_tokens:
                del self.tokens_by_user[userid]

    def set_token_secret(self, tokenid: str) -> str:
        """Generate a new secret (a lowercase UUID), store only its hash, return it."""
        secret = str(uuid.uuid4())
        salt = os.urandom(16)
        self.token_hashes[tokenid] = (salt, _hash_secret(secret, salt))
        return secret

    def verify_token_secret(self, tokenid: str, secret: str) -> bool:
        stored = self.token_hashes.get(tokenid)
        if stored is None:
            return False
        salt, digest = stored
        return hmac.compare_digest(digest, _hash_secret(secret, salt))

    def is_active_authid(self, auth_id: str, now: float) -> bool:
        """``is_active_auth_id``: the user (and the token) exist, are enabled and unexpired."""
        userid, token_name = split_authid(auth_id)
        user = self.users.get(userid)
        if user is None or not _active(user.enable, user.expire, now):
            return False
        if token_name is None:
            return True
        token = self.tokens.get(auth_id)
        return token is not None and _active(token.enable, token.expire, now)

    # -- privileges ---------------------------------------------------------------------------

    @staticmethod
    def is_superuser(auth_id: str) -> bool:
        return auth_id == ROOT_USERID

    def lookup_privs_details(self, auth_id: str, path: Sequence[str]) -> tuple[int, int]:
        """``CachedUserInfo::lookup_privs_details``: (privs, propagated privs); a token's
        rights are ANDed with its owner's (propagate bits too)."""
        if self.is_superuser(auth_id):
            return ALL_PRIVS, ALL_PRIVS
        comps = flatten(path)
        privs, propagated = self.acl.privs(auth_id, comps)
        userid, token_name = split_authid(auth_id)
        if token_name is not None:
            owner_privs, owner_propagated = self.lookup_privs_details(userid, comps)
            privs &= owner_privs
            propagated &= owner_propagated
        return privs, propagated

    def lookup_privs(self, auth_id: str, path: Sequence[str]) -> int:
        return self.lookup_privs_details(auth_id, path)[0]

    def any_privs_below(self, auth_id: str, path: Sequence[str], privs: int) -> bool:
        """``CachedUserInfo::any_privs_below``: propagating privs on ``path`` or any
        privs on a path below it where the auth-id has ACL entries."""
        comps = flatten(path)
        if self.lookup_privs_details(auth_id, comps)[1] & privs:
            return True
        depth = len(comps)
        for entry in self.acl.paths_by_authid.get(auth_id, ()):
            if len(entry) > depth and entry[:depth] == comps and self.lookup_privs(auth_id, entry) & privs:
                return True
        return False

    def uniform_privs_below(self, auth_id: str, path: Sequence[str]) -> int | None:
        """The privileges of every path strictly below ``path`` when neither the auth-id
        nor (for a token) its owner has an ACL entry down there, else None.

        Lets a listing of thousands of namespaces skip one tree walk per namespace."""
        comps = flatten(path)
        depth = len(comps)
        owners = {auth_id, split_authid(auth_id)[0]}
        for owner in owners:
            for entry in self.acl.paths_by_authid.get(owner, ()):
                if len(entry) > depth and entry[:depth] == comps:
                    return None
        # A child name no ACL path can contain: what any deeper path inherits.
        return self.lookup_privs(auth_id, (*comps, "\x00"))

    def check_privs(self, auth_id: str, path: Sequence[str], required: int, *, partial: bool) -> None:
        """``CachedUserInfo::check_privs``: a 400 naming the missing privileges."""
        comps = flatten(path)
        privs = self.lookup_privs(auth_id, comps)
        allowed = bool(privs & required) if partial else (privs & required) == required
        if not allowed:
            names = ("|" if partial else "&").join(priv_names(required))
            raise ApiError(f"missing permissions '{names}' on '/{'/'.join(comps)}'")

    def check_ns_privs_full(self, store: str, ns: str, auth_id: str, full: int, partial: int) -> int:
        """``check_ns_privs_full``: the privileges, or a 403 naming what is missing."""
        acl_path = ns_acl_path(store, ns)
        privs = self.lookup_privs(auth_id, acl_path)
        if (full and privs & full) or (partial and privs & partial):
            return privs
        names = "|".join(priv_names(full | partial))
        raise ApiError(f"permission check failed - missing {names} on /{'/'.join(acl_path)}", 403)

    # -- datastores ---------------------------------------------------------------------------

    def lookup_datastore(self, name: str) -> Datastore:
        store = self.datastores.get(name)
        if store is None:
            raise ApiError(f"no such datastore '{name}'")
        return store

    # -- tasks ----------------------------------------------------------------------------------

    def new_task(self, worker_type: str, worker_id: str, auth_id: str, *, exitstatus: str = "OK") -> str:
        """Record a finished task and return its UPID."""
        self._task_counter += 1
        now = int(time.time())
        upid = (
            f"UPID:{self.node}:{self._pid:08X}:{self._pstart:08X}:{self._task_counter:08X}:"
            f"{now:08X}:{worker_type}:{escape_unit(worker_id)}:{auth_id}:"
        )
        self.tasks[upid] = Task(upid, worker_type, worker_id, auth_id, now, now, exitstatus)
        return upid


def escape_unit(value: str) -> str:
    """``proxmox_sys::systemd::escape_unit``, as UPIDs encode worker ids (``:`` -> ``\\x3a``)."""
    out = []
    for index, byte in enumerate(value.encode()):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif (index == 0 and char == ".") or not (char in "_." or (char.isascii() and char.isalnum())):
            out.append(f"\\x{byte:02x}")
        else:
            out.append(char)
    return "".join(out)


def unescape_unit(value: str) -> str:
    raw = bytearray()
    index = 0
    while index < len(value):
        if value.startswith("\\x", index) and index + 4 <= len(value):
            raw.append(int(value[index + 2 : index + 4], 16))
            index += 4
        elif value[index] == "-":
            raw.append(ord("/"))
            index += 1
        else:
            raw.extend(value[index].encode())
            index += 1
    return raw.decode(errors="replace")


def _active(enable: bool | None, expire: int | None, now: float) -> bool:
    if enable is False:
        return False
    return not (expire is not None and expire > 0 and now >= expire)


# --- prune selection (pbs-datastore prune.rs) --------------------------------------------


def compute_prune(snapshots: Sequence[Snapshot], keep: dict[str, int]) -> dict[int, str]:
    """``compute_prune_info``: backup_time -> "keep" | "remove" | "protected".

    With no keep-* option at all everything is kept (``keep_all``). Time buckets use
    UTC (a real PBS uses the server's local time zone).
    """
    ordered = sorted(snapshots, key=lambda s: s.backup_time, reverse=True)
    if not any(keep.get(name) for name in KEEP_NAMES):
        return {s.backup_time: ("protected" if s.protected else "keep") for s in ordered}
    marks: dict[int, str] = {}

    def stamp(fmt: str) -> Any:
        return lambda snap: datetime.fromtimestamp(snap.backup_time, UTC).strftime(fmt)

    selectors = (
        ("keep-last", lambda snap: str(snap.backup_time)),
        ("keep-hourly", stamp("%Y/%m/%d/%H")),
        ("keep-daily", stamp("%Y/%m/%d")),
        ("keep-weekly", stamp("%G/%V")),
        ("keep-monthly", stamp("%Y/%m")),
        ("keep-yearly", stamp("%Y")),
    )
    for name, select in selectors:
        count = keep.get(name)
        if not count:
            continue
        already = {select(s) for s in ordered if marks.get(s.backup_time) == "keep"}
        included: set[str] = set()
        for snap in ordered:
            if snap.backup_time in marks:
                continue
            if snap.protected:
                marks[snap.backup_time] = "protected"
                continue
            sel = select(snap)
            if sel in already:
                continue
            if sel not in included:
                if len(included) >= count:
                    break
                included.add(sel)
                marks[snap.backup_time] = "keep"
            else:
                marks[snap.backup_time] = "remove"
    return {s.backup_time: "protected" if s.protected else marks.get(s.backup_time, "remove") for s in ordered}
