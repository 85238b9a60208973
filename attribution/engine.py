"""Chunk-exact attribution of a deduplicated datastore to its owners (pure numpy, no Django).

Input: per owner (a tenant id, or a key for the namespaces of no tenant), the
compact chunk lists of its snapshots: ``(digests, sizes)`` pairs of a uint64
key per chunk digest and its uncompressed size (uint32), digests unique within
a snapshot (see ``pbsclient.backup_format.compact``).

Output per owner, in bytes of uncompressed chunks:

- ``referenced``: the distinct chunks the owner references (deduplicated
  across its own snapshots);
- ``exclusive``: the chunks no other owner references (what removing the owner
  would free);
- ``share``: each chunk's bytes split among the owners that reference it: a
  chunk of ``b`` bytes referenced by ``n`` owners gives each ``b // n`` and
  its ``b % n`` leftover bytes one each to the first owners in ascending key
  order, so the shares of all owners add up exactly to ``distinct_bytes``.

A digest has one size. Should inputs disagree (only two chunks sharing a
64-bit key can cause that), the size seen first wins, owners taken in key
order and each owner's snapshots and chunks in the order given.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Attribution", "Figures", "attribute"]

@dataclass(frozen=True)
class Figures:
    """One owner's bytes (uncompressed chunk sizes)."""

    referenced: int = 0
    exclusive: int = 0
    share: int = 0


@dataclass(frozen=True)
class Attribution[K: Hashable]:
    """Figures per owner plus the datastore's distinct chunks and their bytes."""

    figures: dict[K, Figures] = field(default_factory=dict)
    distinct_chunks: int = 0
    distinct_bytes: int = 0

    def __getitem__(self, key: K) -> Figures:
        return self.figures[key]


def _snapshot_arrays(snapshot: tuple[np.ndarray, np.ndarray], owner: object) -> tuple[np.ndarray, np.ndarray]:
    digests, sizes = (np.asarray(a) for a in snapshot)
    if digests.ndim != 1 or digests.shape != sizes.shape:
        raise ValueError(f"owner {owner!r}: digests and sizes must be 1-d arrays of the same length")
    if digests.dtype != np.uint64:
        raise ValueError(f"owner {owner!r}: digests must be uint64, not {digests.dtype}")
    if sizes.dtype.kind not in "ui":
        raise ValueError(f"owner {owner!r}: sizes must be integers, not {sizes.dtype}")
    return digests, sizes


def _owner_chunks(owner: object, snapshots: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The owner's distinct digests (sorted) and their sizes (first occurrence)."""
    pairs = [_snapshot_arrays(snapshot, owner) for snapshot in snapshots]
    if not pairs:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint32)
    digests = np.concatenate([d for d, _ in pairs])
    sizes = np.concatenate([s.astype(np.uint32, copy=False) for _, s in pairs])
    unique, first = np.unique(digests, return_index=True)
    return unique, sizes[first]


def attribute[K: Hashable](owners: Mapping[K, Iterable[tuple[np.ndarray, np.ndarray]]]) -> Attribution[K]:
    """Referenced, exclusive and share bytes per owner; see the module docstring for the rules."""
    keys = sorted(owners)
    per_owner = [_owner_chunks(key, owners[key]) for key in keys]
    if not keys:
        return Attribution()
    lengths = np.array([len(d) for d, _ in per_owner], dtype=np.int64)
    digests = np.concatenate([d for d, _ in per_owner])
    sizes = np.concatenate([s for _, s in per_owner])
    owner_of = np.repeat(np.arange(len(keys), dtype=np.int64), lengths)
    del per_owner
    # A stable sort keeps the owners of one digest in key order (they were concatenated so).
    order = np.argsort(digests, kind="stable")
    digests, sizes, owner_of = digests[order], sizes[order], owner_of[order]
    del order
    m = len(digests)
    new_chunk = np.ones(m, dtype=bool)
    if m:
        np.not_equal(digests[1:], digests[:-1], out=new_chunk[1:])
    starts = np.flatnonzero(new_chunk)
    chunk_of = np.cumsum(new_chunk) - 1
    counts = np.diff(np.append(starts, m))
    chunk_sizes = sizes[starts].astype(np.int64)
    size = chunk_sizes[chunk_of]
    count = counts[chunk_of]
    rank = np.arange(m) - starts[chunk_of]
    share = size // count + (rank < size % count)
    exclusive = np.where(count == 1, size, 0)

    def per_key(values: np.ndarray) -> list[int]:
        by_owner = np.zeros(len(keys), dtype=np.int64)
        np.add.at(by_owner, owner_of, values)
        return [int(v) for v in by_owner]

    referenced_by, exclusive_by, share_by = per_key(size), per_key(exclusive), per_key(share)
    figures = {
        key: Figures(referenced=referenced_by[i], exclusive=exclusive_by[i], share=share_by[i])
        for i, key in enumerate(keys)
    }
    return Attribution(figures=figures, distinct_chunks=len(starts), distinct_bytes=int(chunk_sizes.sum()))
