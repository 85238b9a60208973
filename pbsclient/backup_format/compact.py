"""Compact chunk references: a uint64 key per digest plus a uint32 size.

A snapshot's chunk list is kept as two numpy arrays instead of 32-byte digests:
``keys`` holds the first 8 bytes of each SHA-256 digest read as a big-endian
uint64 (so keys sort like the digests themselves), ``sizes`` the uncompressed
chunk size. Stored, an array is plain numpy (native little-endian bytes). That is 12 bytes per reference
instead of ~100 for a Python ``(bytes, int)`` tuple, and numpy can sort, unique
and join hundreds of millions of them in seconds.

Why 64 bits are enough: SHA-256 output is uniform, so its first 64 bits are too.
Among n distinct chunks the chance that any two share a key is about
n**2 / 2**65 (the birthday bound): 2.7e-6 at 10**7 chunks and 2.7e-4 at 10**8.
And a collision costs little: two chunks counted as one, so at most one chunk's
bytes (4 MiB at most for the usual chunk sizes) attributed to the wrong tenant
in a datastore of tens of terabytes. The full digests stay available from the
parsed index when exactness per chunk matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pbsclient.backup_format.formats import DIGEST_SIZE

__all__ = ["ChunkRefs", "digest_key", "digest_keys"]


def digest_keys(digests: np.ndarray) -> np.ndarray:
    """uint64 keys of an (n, 32) uint8 digest array (first 8 bytes, big-endian)."""
    if digests.ndim != 2 or digests.shape[1] != DIGEST_SIZE:
        raise ValueError(f"expected an (n, {DIGEST_SIZE}) digest array, got shape {digests.shape}")
    head = np.ascontiguousarray(digests[:, :8])
    return head.view(">u8").reshape(-1).astype(np.uint64)


def digest_key(digest: bytes) -> int:
    """The key of one 32-byte digest, as a Python int."""
    if len(digest) != DIGEST_SIZE:
        raise ValueError(f"a digest has {DIGEST_SIZE} bytes, not {len(digest)}")
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True, eq=False)
class ChunkRefs:
    """Chunk references: ``keys`` (uint64) and ``sizes`` (uint32, uncompressed), same length.

    Repeated keys are kept; ``distinct()`` keeps one of each.
    """

    keys: np.ndarray
    sizes: np.ndarray

    def __post_init__(self) -> None:
        if self.keys.shape != self.sizes.shape or self.keys.ndim != 1:
            raise ValueError("keys and sizes must be 1-d arrays of the same length")

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def empty(cls) -> ChunkRefs:
        return cls(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint32))

    @classmethod
    def concat(cls, parts: Iterable[ChunkRefs]) -> ChunkRefs:
        parts = list(parts)
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.keys for p in parts]), np.concatenate([p.sizes for p in parts]))

    def distinct(self) -> ChunkRefs:
        """One entry per key, sorted by key (a chunk has one size; the first seen is kept)."""
        keys, first = np.unique(self.keys, return_index=True)
        return ChunkRefs(keys, self.sizes[first])

    def total_bytes(self) -> int:
        """Sum of the sizes (of every reference; call ``distinct()`` first for unique bytes)."""
        return int(self.sizes.sum(dtype=np.uint64))
