"""Chunk-exact attribution of a deduplicated datastore to its owners (pure numpy, no Django).

Input: per owner (a tenant id, or a key for the namespaces of no tenant), the
compact chunk lists of its snapshots: ``(digests, sizes)`` pairs of a uint64
key per chunk digest and its uncompressed size, digests unique within a
snapshot (see ``pbsclient.backup_format.compact``). Sorted digests (as the
stored snapshot indexes keep them) are the fast path; others are sorted first.

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

How (time and memory): the digest space is cut into 2**k equal ranges
("buckets") so that one bucket holds a few million references. A sorted
snapshot puts each bucket in one contiguous slice, so a bucket costs no copy
of the input. Per bucket, each owner's slices are merged into its distinct
chunks (a stable sort of a few sorted runs, which numpy's timsort merges in
near-linear time), then all owners' distinct chunks are sorted together,
owners kept in key order, and one vectorised pass yields the owner count,
size and owner rank of every (chunk, owner) pair. Working memory is a
bucket's worth of arrays; nothing the size of the whole input is copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["REFS_PER_BUCKET", "Attribution", "Figures", "OwnerKey", "attribute"]

# Aim for buckets of about this many chunk references: at most ~48 bytes of working arrays per
# reference of a bucket (~50 MiB), whatever the input's size; more buckets only add Python loops.
REFS_PER_BUCKET = 1 << 20

# Per-bucket byte sums go through float64 (np.bincount); exact below 2**53.
_EXACT_FLOAT = 1 << 53


class OwnerKey(Protocol):
    """An owner key: hashable and sortable (tenant ids, and a sentinel for the rest that sorts last)."""

    def __hash__(self) -> int: ...

    def __lt__(self, other: Any, /) -> bool: ...


@dataclass(frozen=True)
class Figures:
    """One owner's bytes (uncompressed chunk sizes)."""

    referenced: int = 0
    exclusive: int = 0
    share: int = 0


@dataclass(frozen=True)
class Attribution[K: OwnerKey]:
    """Figures per owner plus the datastore's distinct chunks and their bytes."""

    figures: dict[K, Figures] = field(default_factory=dict)
    distinct_chunks: int = 0
    distinct_bytes: int = 0

    def __getitem__(self, key: K) -> Figures:
        return self.figures[key]


@dataclass
class _Snapshot:
    digests: np.ndarray  # uint64, strictly increasing
    sizes: np.ndarray  # uint32
    cuts: list[int]  # bucket b is digests[cuts[b]:cuts[b + 1]]


def _prepared(snapshot: tuple[np.ndarray, np.ndarray], owner: object) -> tuple[np.ndarray, np.ndarray]:
    """The snapshot's arrays, checked; sorted by digest (first of any repeated digest kept)."""
    digests, sizes = (np.asarray(a) for a in snapshot)
    if digests.ndim != 1 or digests.shape != sizes.shape:
        raise ValueError(f"owner {owner!r}: digests and sizes must be 1-d arrays of the same length")
    if digests.dtype != np.uint64:
        raise ValueError(f"owner {owner!r}: digests must be uint64, not {digests.dtype}")
    if sizes.dtype.kind not in "ui":
        raise ValueError(f"owner {owner!r}: sizes must be integers, not {sizes.dtype}")
    if sizes.dtype != np.uint32:
        if len(sizes) and (sizes.min() < 0 or sizes.max() > np.iinfo(np.uint32).max):
            raise ValueError(f"owner {owner!r}: sizes must fit in 32 bits")
        sizes = sizes.astype(np.uint32)
    if len(digests) > 1 and not np.all(digests[1:] > digests[:-1]):
        order = np.argsort(digests, kind="stable")
        digests = digests[order]
        keep = np.empty(len(digests), dtype=bool)
        keep[0] = True
        np.not_equal(digests[1:], digests[:-1], out=keep[1:])
        digests, sizes = digests[keep], sizes[order[keep]]
    return digests, sizes


def _bucket_bounds(total_refs: int, refs_per_bucket: int) -> np.ndarray:
    """Inner bounds of 2**k equal digest ranges, k chosen for about ``refs_per_bucket`` refs each."""
    shift = 0
    while shift < 16 and (total_refs >> shift) > refs_per_bucket:
        shift += 1
    step = 1 << (64 - shift)
    return np.array([i * step for i in range(1, 1 << shift)], dtype=np.uint64)


def _owner_distinct(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One owner's distinct digests in a bucket (sorted) with their first-seen sizes."""
    if len(parts) == 1:
        return parts[0]
    digests = np.concatenate([d for d, _ in parts])
    order = np.argsort(digests, kind="stable")  # sorted runs: timsort merges them
    digests = digests[order]
    keep = np.empty(len(digests), dtype=bool)
    keep[:1] = True
    np.not_equal(digests[1:], digests[:-1], out=keep[1:])
    sizes = np.concatenate([s for _, s in parts])
    return digests[keep], sizes[order[keep]]


class _Totals:
    """Per-owner sums (exact Python ints) and the datastore totals, bucket by bucket."""

    def __init__(self, owners: int) -> None:
        self.referenced = [0] * owners
        self.exclusive = [0] * owners
        self.share = [0] * owners
        self.distinct_chunks = 0
        self.distinct_bytes = 0

    def add(self, target: list[int], owner_of: np.ndarray, values: np.ndarray, total: int) -> None:
        if total >= _EXACT_FLOAT:  # beyond float64's exact integers: slower, exact in int64 (or object)
            sums = np.zeros(len(target), dtype=np.int64 if total < 2**63 else object)
            np.add.at(sums, owner_of, values.astype(sums.dtype))
        else:
            sums = np.bincount(owner_of, weights=values, minlength=len(target))
        for i in np.flatnonzero(sums).tolist():
            target[i] += int(sums[i])

    def bucket(self, digests: np.ndarray, sizes: np.ndarray, owner_of: np.ndarray) -> None:
        """Account one bucket: (digest, owner) pairs, one per owner and chunk, owners in key order."""
        m = len(digests)
        if not m:
            return
        order = np.argsort(digests, kind="stable")  # each owner's run is sorted; owners stay in key order
        digests = digests[order]
        new_chunk = np.empty(m, dtype=bool)
        new_chunk[0] = True
        np.not_equal(digests[1:], digests[:-1], out=new_chunk[1:])
        del digests
        starts = np.flatnonzero(new_chunk)
        del new_chunk
        counts = np.diff(starts, append=m)
        chunk_sizes = sizes[order[starts]].astype(np.int64)
        owner_of = owner_of[order]
        del order
        self.distinct_chunks += len(starts)
        bucket_bytes = int(chunk_sizes.sum())
        self.distinct_bytes += bucket_bytes
        size = np.repeat(chunk_sizes, counts)
        self.add(self.referenced, owner_of, size, int(size.sum()))
        only = np.repeat(counts == 1, counts)
        self.add(self.exclusive, owner_of[only], size[only], bucket_bytes)
        del only
        count = np.repeat(counts, counts)
        rank = np.arange(m, dtype=np.int64)
        rank -= np.repeat(starts, counts)
        share = size // count
        share += rank < size % count
        self.add(self.share, owner_of, share, bucket_bytes)


def attribute[K: OwnerKey](
    owners: Mapping[K, Iterable[tuple[np.ndarray, np.ndarray]]], *, refs_per_bucket: int = REFS_PER_BUCKET
) -> Attribution[K]:
    """Referenced, exclusive and share bytes per owner; see the module docstring for the rules.

    Each owner's value may be any iterable of ``(digests, sizes)`` pairs; it is read once.
    """
    keys = sorted(owners)
    snapshots = [[_prepared(snapshot, key) for snapshot in owners[key]] for key in keys]
    total_refs = sum(len(d) for owned in snapshots for d, _ in owned)
    bounds = _bucket_bounds(total_refs, max(1, refs_per_bucket))
    prepared = [
        [_Snapshot(d, s, [0, *np.searchsorted(d, bounds).tolist(), len(d)]) for d, s in owned] for owned in snapshots
    ]
    del snapshots
    owner_dtype = np.uint16 if len(keys) <= 1 << 16 else np.uint32
    totals = _Totals(len(keys))
    for b in range(len(bounds) + 1):
        digest_parts, size_parts, lengths = [], [], []
        for owned in prepared:
            parts = [
                (snap.digests[snap.cuts[b] : snap.cuts[b + 1]], snap.sizes[snap.cuts[b] : snap.cuts[b + 1]])
                for snap in owned
                if snap.cuts[b + 1] > snap.cuts[b]
            ]
            digests, sizes = _owner_distinct(parts) if parts else (np.empty(0, np.uint64), np.empty(0, np.uint32))
            digest_parts.append(digests)
            size_parts.append(sizes)
            lengths.append(len(digests))
        owner_of = np.repeat(np.arange(len(keys), dtype=owner_dtype), lengths)
        totals.bucket(np.concatenate(digest_parts or [np.empty(0, np.uint64)]),
                      np.concatenate(size_parts or [np.empty(0, np.uint32)]), owner_of)  # fmt: skip
    figures = {
        key: Figures(referenced=totals.referenced[i], exclusive=totals.exclusive[i], share=totals.share[i])
        for i, key in enumerate(keys)
    }
    return Attribution(figures=figures, distinct_chunks=totals.distinct_chunks, distinct_bytes=totals.distinct_bytes)
