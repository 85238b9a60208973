"""A writer of PBS's on-disk/wire formats (PBS 4.2), for the simulator to serve real files.

Independent of ``pbsclient`` on purpose: the portal's parsers are tested
against what this module writes, so the two must not share code. The magic
numbers are derived here the way PBS defines them (the first 8 bytes of the
SHA-256 of a text, pbs-datastore/src/file_formats.rs); layouts follow
pbs-datastore/src/{data_blob,fixed_index,dynamic_index,manifest}.rs.

Layouts (integers little-endian)::

    blob:  magic[8] crc32[4] data               crc32 over data (zstd level 1 when that is smaller)
    .fidx: magic[8] uuid[16] ctime i64 index_csum[32] size u64 chunk_size u64, zero pad to 4096,
           then digest[32] per chunk
    .didx: magic[8] uuid[16] ctime i64 index_csum[32], zero pad to 4096,
           then (end offset u64, digest[32]) per chunk
    index_csum = sha256(everything after the header)
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import zstandard

__all__ = [
    "COMPRESSED_BLOB_MAGIC",
    "DYNAMIC_INDEX_MAGIC",
    "FIXED_INDEX_MAGIC",
    "INDEX_HEADER_SIZE",
    "MANIFEST_BLOB_NAME",
    "UNCOMPRESSED_BLOB_MAGIC",
    "IndexFile",
    "encode_blob",
    "manifest_blob",
    "manifest_entry",
    "manifest_json",
    "write_dynamic_index",
    "write_fixed_index",
]


def _magic(text: str) -> bytes:
    # pbs-datastore/src/file_formats.rs: "openssl::sha::sha256(b\"<text>\")[0..8]"
    return hashlib.sha256(text.encode()).digest()[:8]


# pbs-datastore/src/file_formats.rs: UNCOMPRESSED_BLOB_MAGIC_1_0
UNCOMPRESSED_BLOB_MAGIC = _magic("Proxmox Backup uncompressed blob v1.0")
# pbs-datastore/src/file_formats.rs: COMPRESSED_BLOB_MAGIC_1_0
COMPRESSED_BLOB_MAGIC = _magic("Proxmox Backup zstd compressed blob v1.0")
# pbs-datastore/src/file_formats.rs: FIXED_SIZED_CHUNK_INDEX_1_0
FIXED_INDEX_MAGIC = _magic("Proxmox Backup fixed sized chunk index v1.0")
# pbs-datastore/src/file_formats.rs: DYNAMIC_SIZED_CHUNK_INDEX_1_0
DYNAMIC_INDEX_MAGIC = _magic("Proxmox Backup dynamic sized chunk index v1.0")
# pbs-datastore/src/fixed_index.rs, dynamic_index.rs: headers are one 4096-byte page
INDEX_HEADER_SIZE = 4096
# proxmox-rs pbs-api-types (MANIFEST_BLOB_NAME)
MANIFEST_BLOB_NAME = "index.json.blob"
# pbs-datastore/src/data_blob.rs: DataBlob::encode uses zstd level 1
_ZSTD_LEVEL = 1


def encode_blob(data: bytes, *, compress: bool = True) -> bytes:
    """DataBlob::encode without encryption: zstd only when the result is not larger."""
    magic, payload = UNCOMPRESSED_BLOB_MAGIC, data
    if compress:
        packed = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)
        if len(packed) <= len(data):
            magic, payload = COMPRESSED_BLOB_MAGIC, packed
    return magic + struct.pack("<I", zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class IndexFile:
    """A written index file: its bytes plus what the manifest records about it."""

    name: str
    raw: bytes
    size: int  # archive bytes (uncompressed)
    index_csum: bytes


def _header(magic: bytes, uuid: bytes, ctime: int, csum: bytes, tail: bytes = b"") -> bytes:
    if len(uuid) != 16:
        raise ValueError("uuid must be 16 bytes")
    head = magic + uuid + struct.pack("<q", ctime) + csum + tail
    return head + bytes(INDEX_HEADER_SIZE - len(head))


def write_fixed_index(
    name: str, digests: Sequence[bytes], *, size: int, chunk_size: int, uuid: bytes, ctime: int
) -> IndexFile:
    """A ``.fidx`` of ``size`` bytes in ``chunk_size`` chunks (FixedIndexWriter + close)."""
    if chunk_size <= 0 or chunk_size & (chunk_size - 1):
        raise ValueError("chunk_size must be a power of two")
    if len(digests) != -(-size // chunk_size):
        raise ValueError(f"{len(digests)} digests do not cover {size} bytes in {chunk_size}-byte chunks")
    body = b"".join(digests)
    csum = hashlib.sha256(body).digest()
    raw = _header(FIXED_INDEX_MAGIC, uuid, ctime, csum, struct.pack("<QQ", size, chunk_size)) + body
    return IndexFile(name, raw, size, csum)


def write_dynamic_index(name: str, chunks: Iterable[tuple[bytes, int]], *, uuid: bytes, ctime: int) -> IndexFile:
    """A ``.didx`` from (digest, uncompressed chunk size) pairs (DynamicIndexWriter + close)."""
    parts: list[bytes] = []
    end = 0
    for digest, length in chunks:
        if length <= 0 or len(digest) != 32:
            raise ValueError("chunks need a 32-byte digest and a positive size")
        end += length
        parts.append(struct.pack("<Q", end) + digest)
    body = b"".join(parts)
    csum = hashlib.sha256(body).digest()
    return IndexFile(name, _header(DYNAMIC_INDEX_MAGIC, uuid, ctime, csum) + body, end, csum)


def manifest_entry(name: str, *, size: int, csum: bytes, crypt_mode: str = "none") -> dict[str, Any]:
    """One ``files`` entry (pbs-datastore/src/manifest.rs FileInfo, kebab-case)."""
    return {"crypt-mode": crypt_mode, "csum": csum.hex(), "filename": name, "size": size}


def manifest_json(
    *,
    backup_type: str,
    backup_id: str,
    backup_time: int,
    files: Sequence[Mapping[str, Any]],
    unprotected: Mapping[str, Any] | None = None,
) -> str:
    """BackupManifest::to_string(None): serde_json::to_string_pretty of the manifest value.

    serde_json (without its preserve_order feature) keeps object keys sorted and
    pretty-prints with two-space indents and no trailing newline, as
    ``json.dumps(indent=2, sort_keys=True)`` does.
    """
    value = {
        "backup-id": backup_id,
        "backup-time": backup_time,
        "backup-type": backup_type,
        "files": [dict(item) for item in files],
        "signature": None,
        "unprotected": dict(unprotected or {}),
    }
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def manifest_blob(**kwargs: Any) -> bytes:
    """``index.json.blob``: the manifest JSON in a (zstd) blob, as the backup client uploads it."""
    return encode_blob(manifest_json(**kwargs).encode())
