"""Fixed (``.fidx``) and dynamic (``.didx``) chunk indexes -> (digest, chunk size) lists.

Layouts (pbs-datastore/src/fixed_index.rs, dynamic_index.rs; all integers little-endian)::

    .fidx: header (4096 bytes: magic, uuid, ctime, index_csum, size, chunk_size, zero padding)
           then one 32-byte SHA-256 digest per chunk; ceil(size / chunk_size) of them
    .didx: header (4096 bytes: magic, uuid, ctime, index_csum, zero padding)
           then per chunk (end offset u64, digest [32]); 40 bytes each

``index_csum`` is SHA-256 over everything after the header (fixed: the digests;
dynamic: offset||digest pairs), as both writers compute it in ``close()``.

Chunk sizes are UNCOMPRESSED sizes: a fixed index's chunks are all
``chunk_size`` long except the last (``size`` modulo ``chunk_size``, when not
zero); a dynamic index's are the differences of consecutive end offsets. What
a chunk occupies on disk (zstd, encryption) is not in any index.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from pbsclient.backup_format.compact import ChunkRefs, digest_keys
from pbsclient.backup_format.errors import BackupFormatError
from pbsclient.backup_format.formats import (
    DIGEST_SIZE,
    DYNAMIC_ENTRY,
    DYNAMIC_INDEX_HEADER,
    DYNAMIC_SIZED_CHUNK_INDEX_1_0,
    FIXED_INDEX_HEADER,
    FIXED_SIZED_CHUNK_INDEX_1_0,
    INDEX_HEADER_SIZE,
)

__all__ = ["ChunkIndex", "index_kind", "parse_dynamic_index", "parse_fixed_index", "parse_index"]

_MAX_CHUNK_SIZE = 2**32 - 1  # sizes are kept as uint32


@dataclass(frozen=True, eq=False)
class ChunkIndex:
    """A parsed index file.

    ``digests`` is an (n, 32) uint8 array of the chunk digests in archive order
    (repeats kept: an archive may reference one chunk many times); ``sizes``
    the n uncompressed chunk sizes (uint32). ``size`` is the archive's byte size.
    """

    kind: str  # "fixed" | "dynamic"
    uuid: bytes
    ctime: int
    index_csum: bytes
    size: int
    chunk_size: int | None  # fixed indexes only
    digests: np.ndarray
    sizes: np.ndarray

    def __len__(self) -> int:
        return len(self.sizes)

    def chunks(self) -> list[tuple[bytes, int]]:
        """(32-byte digest, uncompressed size) per chunk, in archive order."""
        return [(bytes(row), int(size)) for row, size in zip(self.digests, self.sizes, strict=True)]

    def compact(self) -> ChunkRefs:
        """The compact form: uint64 digest keys plus uint32 sizes (see ``compact``)."""
        return ChunkRefs(keys=digest_keys(self.digests), sizes=self.sizes)


def _check_header(raw: bytes, magic: bytes, what: str) -> None:
    if len(raw) < INDEX_HEADER_SIZE:
        # fixed_index.rs / dynamic_index.rs: "index too small ({})"
        raise BackupFormatError(f"index too small ({len(raw)})", what=what)
    if raw[:8] != magic:
        other = {FIXED_SIZED_CHUNK_INDEX_1_0: "a fixed index", DYNAMIC_SIZED_CHUNK_INDEX_1_0: "a dynamic index"}
        hint = f" (this is {other[raw[:8]]})" if raw[:8] in other else ""
        raise BackupFormatError(f"got unknown magic number{hint}", what=what)


def _check_csum(body: bytes | memoryview, stored: bytes, what: str) -> None:
    computed = hashlib.sha256(body).digest()
    if computed != stored:
        raise BackupFormatError(
            f"index checksum mismatch (header {stored.hex()}, computed {computed.hex()})", what=what
        )


def parse_fixed_index(raw: bytes) -> ChunkIndex:
    """Parse and verify a ``.fidx`` file (FixedIndexReader::new plus the checksum)."""
    what = "fixed index"
    _check_header(raw, FIXED_SIZED_CHUNK_INDEX_1_0, what)
    _, uuid, ctime, index_csum, size, chunk_size = FIXED_INDEX_HEADER.unpack_from(raw)
    if chunk_size == 0 or chunk_size & (chunk_size - 1):
        raise BackupFormatError(f"got non-power-of-two chunk size: {chunk_size}", what=what)
    if chunk_size > _MAX_CHUNK_SIZE:
        raise BackupFormatError(f"chunk size {chunk_size} too large", what=what)
    count = -(-size // chunk_size)
    body = memoryview(raw)[INDEX_HEADER_SIZE:]
    if len(body) != count * DIGEST_SIZE:
        # fixed_index.rs: "got unexpected file size ({} != {})"
        raise BackupFormatError(f"got unexpected file size ({count * DIGEST_SIZE} != {len(body)})", what=what)
    _check_csum(body, index_csum, what)
    digests = np.frombuffer(body, dtype=np.uint8).reshape(count, DIGEST_SIZE)
    sizes = np.full(count, chunk_size, dtype=np.uint32)
    if count and size % chunk_size:
        sizes[-1] = size % chunk_size
    return ChunkIndex("fixed", uuid, ctime, index_csum, size, chunk_size, digests, sizes)


def parse_dynamic_index(raw: bytes) -> ChunkIndex:
    """Parse and verify a ``.didx`` file (DynamicIndexReader::new plus the checksum)."""
    what = "dynamic index"
    _check_header(raw, DYNAMIC_SIZED_CHUNK_INDEX_1_0, what)
    _, uuid, ctime, index_csum = DYNAMIC_INDEX_HEADER.unpack_from(raw)
    body = memoryview(raw)[INDEX_HEADER_SIZE:]
    if len(body) % DYNAMIC_ENTRY.size:
        # dynamic_index.rs: "got unexpected file size"
        raise BackupFormatError(f"got unexpected file size ({len(body)} is no multiple of 40)", what=what)
    _check_csum(body, index_csum, what)
    count = len(body) // DYNAMIC_ENTRY.size
    words = np.frombuffer(body, dtype="<u8").reshape(count, 5)
    ends = words[:, 0]
    lengths = np.diff(ends, prepend=np.uint64(0))
    if count and (np.any(ends[1:] <= ends[:-1]) or ends[0] == 0):
        raise BackupFormatError("chunk end offsets are not strictly increasing", what=what)
    if count and int(lengths.max()) > _MAX_CHUNK_SIZE:
        raise BackupFormatError("a chunk is larger than 4 GiB", what=what)
    digests = np.frombuffer(body, dtype=np.uint8).reshape(count, DYNAMIC_ENTRY.size)[:, 8:]
    size = int(ends[-1]) if count else 0
    return ChunkIndex("dynamic", uuid, ctime, index_csum, size, None, digests, lengths.astype(np.uint32))


def index_kind(file_name: str) -> str | None:
    """"fixed", "dynamic" or None, from the file name's extension (ArchiveType::from_path)."""
    if file_name.endswith(".fidx"):
        return "fixed"
    if file_name.endswith(".didx"):
        return "dynamic"
    return None


def parse_index(file_name: str, raw: bytes) -> ChunkIndex:
    """Parse an index file by its name's extension."""
    kind = index_kind(file_name)
    if kind == "fixed":
        return parse_fixed_index(raw)
    if kind == "dynamic":
        return parse_dynamic_index(raw)
    raise BackupFormatError(f"'{file_name}' is not an index file (.fidx or .didx)")
