"""What the simulator's snapshots contain: manifests and chunk indexes, served by the reader protocol.

The simulator's state knows snapshots by name and size only. This module adds
their content, byte-exact to PBS 4.2 (written by ``pbssim.backup_format``):
per snapshot an ``index.json.blob`` manifest, one ``.fidx``/``.didx`` per
archive built from a list of (chunk digest, uncompressed chunk size), and any
other blobs. Nothing stores chunk data: the reader protocol's ``/download``
only serves these files, and attribution needs no more.

Two ways in:

- ``ContentStore.put_snapshot(...)``: give the chunk lists yourself (tests that
  must know exactly which chunks two tenants share);
- ``chunk_seed.fill_from_state(content, state, seed=...)``: derive seeded chunk
  lists for every snapshot of the simulator's state (see its docstring for how
  they deduplicate). This is the hook the simulator calls to keep the content
  in step with its snapshots; until it does, callers (tests, the dev stack) call it.

Reader sessions (``src/api2/reader/mod.rs``): ``ContentStore.open_reader(...)``
runs PBS's checks of ``GET /api2/json/reader`` in PBS's order and returns a
``ReaderSession`` whose ``handle()`` answers the HTTP/2 requests of the session
(``GET /download?file-name=...``). ``pbssim.server`` calls both over real
HTTPS; tests without HTTPS call them in-process.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from pbssim import backup_format as fmt
from pbssim.acl import DATASTORE_BACKUP, DATASTORE_READ
from pbssim.params import BACKUP_ID_RE, NAMESPACE, ObjectSchema, ParameterError, boolean, integer, string
from pbssim.state import ApiError, State, ns_acl_path, ns_components, split_authid

__all__ = [
    "READER_PROTOCOL",
    "ArchiveSpec",
    "ContentStore",
    "ReaderError",
    "ReaderSession",
    "SnapshotContent",
    "SnapshotRef",
    "build_content",
]

# pbs-datastore/src/lib.rs: PROXMOX_BACKUP_READER_PROTOCOL_ID_V1!()
READER_PROTOCOL = "proxmox-backup-reader-protocol-v1"
FIXED_CHUNK_SIZE = 4 * 2**20  # the backup client's default for images

# src/api2/reader/mod.rs: API_METHOD_UPGRADE_BACKUP's parameters (pbs-api-types schemas).
_READER_SCHEMA = ObjectSchema(
    {
        "store": string(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._\-]*$", min_length=3, max_length=32),
        "ns": NAMESPACE,
        "backup-type": string(enum=("vm", "ct", "host")),
        "backup-id": string(pattern=BACKUP_ID_RE),
        "backup-time": integer(minimum=1),
        "debug": boolean(),
    }
)
# src/api2/reader/mod.rs: API_METHOD_DOWNLOAD_FILE (BACKUP_ARCHIVE_NAME_SCHEMA: a file name).
_DOWNLOAD_SCHEMA = ObjectSchema({"file-name": string(pattern=r"^[^/\\\s]+$", min_length=1)})


class ReaderError(Exception):
    """A PBS error answer: status plus PBS's message text."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.message = message
        self.status = status
        super().__init__(message)


@dataclass(frozen=True, order=True)
class SnapshotRef:
    """One snapshot: datastore, namespace ("" is the root), type, id, time (epoch)."""

    store: str
    ns: str
    backup_type: str
    backup_id: str
    backup_time: int

    def time_string(self) -> str:
        # proxmox_time::epoch_to_rfc3339_utc
        return datetime.fromtimestamp(self.backup_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def dir_name(self) -> str:
        """pbs_api_types::BackupDir's Display: ``<type>/<id>/<RFC 3339 time>``."""
        return f"{self.backup_type}/{self.backup_id}/{self.time_string()}"

    def relative_path(self) -> str:
        """BackupDir::relative_path: ``ns/<a>/ns/<b>/<type>/<id>/<time>``."""
        ns_path = "".join(f"ns/{comp}/" for comp in ns_components(self.ns))
        return ns_path + self.dir_name()


@dataclass(frozen=True)
class ArchiveSpec:
    """One archive of a snapshot: an index file name and its chunks in archive order.

    ``.fidx``: every chunk is ``chunk_size`` long except a shorter last one;
    ``.didx``: any positive sizes. Sizes are uncompressed bytes.
    """

    name: str
    chunks: Sequence[tuple[bytes, int]]
    chunk_size: int = FIXED_CHUNK_SIZE

    def write(self, *, uuid: bytes, ctime: int) -> fmt.IndexFile:
        if self.name.endswith(".fidx"):
            for _, size in self.chunks[:-1]:
                if size != self.chunk_size:
                    raise ValueError(f"{self.name}: only the last chunk of a fixed index may be short")
            total = sum(size for _, size in self.chunks)
            digests = [digest for digest, _ in self.chunks]
            return fmt.write_fixed_index(
                self.name, digests, size=total, chunk_size=self.chunk_size, uuid=uuid, ctime=ctime
            )
        if self.name.endswith(".didx"):
            return fmt.write_dynamic_index(self.name, self.chunks, uuid=uuid, ctime=ctime)
        raise ValueError(f"'{self.name}' is no index file name (.fidx or .didx)")


@dataclass
class SnapshotContent:
    """A snapshot's files as PBS stores them, plus the chunk lists they were built from."""

    ref: SnapshotRef
    owner: str
    archives: list[ArchiveSpec]
    files: dict[str, bytes] = field(default_factory=dict)

    def chunk_refs(self) -> list[tuple[bytes, int]]:
        """Every (digest, size) the snapshot references, over all archives, repeats kept."""
        return [chunk for archive in self.archives for chunk in archive.chunks]


def build_content(
    ref: SnapshotRef, owner: str, archives: Sequence[ArchiveSpec], blobs: Mapping[str, bytes]
) -> SnapshotContent:
    uuid = hashlib.sha256(repr(ref).encode()).digest()[:16]
    files: dict[str, bytes] = {}
    entries = []
    for name, raw in sorted(blobs.items()):
        files[name] = raw
        entries.append(fmt.manifest_entry(name, size=len(raw), csum=hashlib.sha256(raw).digest()))
    for archive in archives:
        index = archive.write(uuid=uuid, ctime=ref.backup_time)
        files[index.name] = index.raw
        entries.append(fmt.manifest_entry(index.name, size=index.size, csum=index.index_csum))
    files[fmt.MANIFEST_BLOB_NAME] = fmt.manifest_blob(
        backup_type=ref.backup_type, backup_id=ref.backup_id, backup_time=ref.backup_time, files=entries
    )
    return SnapshotContent(ref, owner, list(archives), files)


Builder = Callable[[], SnapshotContent]


class ContentStore:
    """Snapshot contents by ``SnapshotRef``; built lazily on first use, thread-safe."""

    def __init__(self) -> None:
        self._builders: dict[SnapshotRef, Builder] = {}
        self._built: dict[SnapshotRef, SnapshotContent] = {}
        self._lock = threading.Lock()
        # Reader sessions opened and files downloaded, for tests and benchmarks.
        self.sessions_opened = 0
        self.downloads: list[tuple[SnapshotRef, str]] = []

    def put_snapshot(
        self,
        ref: SnapshotRef,
        *,
        owner: str,
        archives: Sequence[ArchiveSpec],
        blobs: Mapping[str, bytes] | None = None,
    ) -> SnapshotContent:
        """Add (or replace) a snapshot built from these chunk lists; returns its content."""
        content = build_content(ref, owner, archives, dict(blobs or {}))
        with self._lock:
            self._builders.pop(ref, None)
            self._built[ref] = content
        return content

    def put_lazy(self, ref: SnapshotRef, builder: Builder) -> None:
        """Add a snapshot whose content is built on first access."""
        with self._lock:
            self._built.pop(ref, None)
            self._builders[ref] = builder

    def remove_snapshot(self, ref: SnapshotRef) -> None:
        with self._lock:
            self._builders.pop(ref, None)
            self._built.pop(ref, None)

    def refs(self) -> list[SnapshotRef]:
        with self._lock:
            return sorted({*self._builders, *self._built})

    def get(self, ref: SnapshotRef) -> SnapshotContent | None:
        with self._lock:
            content = self._built.get(ref)
            builder = self._builders.get(ref) if content is None else None
        if builder is None:
            return content
        content = builder()
        with self._lock:
            if self._builders.get(ref) is builder:
                del self._builders[ref]
                self._built[ref] = content
        return content

    def owner_of_group(self, store: str, ns: str, backup_type: str, backup_id: str) -> str | None:
        for ref in self.refs():
            if (ref.store, ref.ns, ref.backup_type, ref.backup_id) == (store, ns, backup_type, backup_id):
                content = self.get(ref)
                if content is not None:
                    return content.owner
        return None

    def record_download(self, ref: SnapshotRef, file_name: str) -> None:
        with self._lock:
            self.downloads.append((ref, file_name))

    # --- the reader protocol ----------------------------------------------------------

    def open_reader(
        self, state: State, auth_id: str, query: str | Iterable[tuple[str, str]], headers: Mapping[str, str]
    ) -> ReaderSession:
        """``upgrade_to_backup_reader_protocol`` (src/api2/reader/mod.rs), checks in PBS's order.

        ``auth_id`` is the authenticated caller; ``headers`` have lower-case names.
        Raises ``ReaderError`` with PBS's status and text; on success the caller
        answers 101 Switching Protocols and serves the session over HTTP/2.
        """
        pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query)
        try:
            params = _READER_SCHEMA.parse_strings(pairs)
        except ParameterError as exc:
            raise ReaderError(str(exc)) from None
        store, ns = params["store"], params.get("ns", "")
        acl_path = ns_acl_path(store, ns)
        privs = state.lookup_privs(auth_id, acl_path)
        priv_read = bool(privs & DATASTORE_READ)
        # mod.rs: "priv_backup needs owner check further down below!"
        if not priv_read and not privs & DATASTORE_BACKUP:
            raise ReaderError(f"no permissions on /{'/'.join(acl_path)}")
        try:
            datastore = state.lookup_datastore(store)
        except ApiError as exc:
            raise ReaderError(exc.message, exc.status) from None
        upgrade = headers.get("upgrade")
        if upgrade is None:
            raise ReaderError("missing Upgrade header")
        if upgrade != READER_PROTOCOL:
            raise ReaderError("invalid protocol name")
        ref = SnapshotRef(store, ns, params["backup-type"], params["backup-id"], params["backup-time"])
        if not priv_read:
            owner = self.owner_of_group(store, ns, ref.backup_type, ref.backup_id)
            if owner is None:
                group_path = ref.relative_path().rsplit("/", 1)[0]
                # DataStore::get_owner -> file_read_firstline's error text
                raise ReaderError(
                    f'unable to read "{datastore.path}/{group_path}/owner" - No such file or directory (os error 2)'
                )
            owner_user, owner_token = split_authid(owner)
            if not (owner == auth_id or (owner_token is not None and owner_user == auth_id)):
                raise ReaderError("backup owner check failed!")
        content = self.get(ref)
        if content is None:
            raise ReaderError(f"snapshot {ref.dir_name()} does not exist.")
        with self._lock:
            self.sessions_opened += 1
        return ReaderSession(self, content, f"{datastore.path}/{ref.relative_path()}")


class ReaderSession:
    """One upgraded reader connection: PBS's READER_API_ROUTER for one snapshot."""

    def __init__(self, store: ContentStore, content: SnapshotContent, snapshot_path: str) -> None:
        self._store = store
        self.content = content
        self.snapshot_path = snapshot_path

    def handle(self, method: str, path: str, query: str) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP/2 request of the session: (status, headers, body)."""
        components = [comp for comp in path.split("/") if comp]
        if method != "GET" or components != ["download"]:
            # proxmox-rest-server h2service.rs: unknown paths
            normalized = "/" + "/".join(components)
            return 404, {"content-type": "text/plain"}, f"Path '{normalized}' not found.".encode()
        try:
            params = _DOWNLOAD_SCHEMA.parse_strings(parse_qsl(query, keep_blank_values=True))
            body = self.download(params["file-name"])
        except ParameterError as exc:
            return 400, {"content-type": "text/plain"}, str(exc).encode()
        except ReaderError as exc:
            return exc.status, {"content-type": "text/plain"}, exc.message.encode()
        return 200, {"content-type": "application/octet-stream"}, body

    def download(self, file_name: str) -> bytes:
        """``download_file``: the file's bytes, or PBS's error for a missing one."""
        raw = self.content.files.get(file_name)
        path = f"{self.snapshot_path}/{file_name}"
        if raw is None:
            # download_file opens indexes first (FixedIndexReader/DynamicIndexReader::open),
            # other files via helpers::create_download_response (404 when missing).
            if file_name.endswith(".fidx"):
                raise ReaderError(f'Unable to open fixed index "{path}" - No such file or directory (os error 2)')
            if file_name.endswith(".didx"):
                raise ReaderError(f'Unable to open dynamic index "{path}" - No such file or directory (os error 2)')
            raise ReaderError(f'open file "{path}" failed - not found', 404)
        self._store.record_download(self.content.ref, file_name)
        return raw
