"""Seeded snapshot contents for the simulator's state: chunk lists that deduplicate like real backups.

``fill_from_state(content, state, seed=...)`` fills a ``chunk_content.ContentStore``
from the simulator's snapshots; ``sync_with_state`` also drops the contents of
snapshots the state no longer has. A ``Simulator`` created with ``content=True``
calls ``sync_with_state`` before each reader session when its snapshots changed;
both are idempotent and cheap (contents are built on first read).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from typing import Any

from pbssim import backup_format as fmt
from pbssim.chunk_content import (
    FIXED_CHUNK_SIZE,
    ArchiveSpec,
    Builder,
    ContentStore,
    SnapshotContent,
    SnapshotRef,
    build_content,
)
from pbssim.state import State

__all__ = ["fill_from_state", "seeded_digest", "sync_with_state"]


def seeded_digest(seed: int, *parts: object) -> bytes:
    """A deterministic stand-in for a chunk's SHA-256: same seed and parts, same digest."""
    return hashlib.sha256(":".join(str(part) for part in (seed, *parts)).encode()).digest()


def _archive_chunks(
    seed: int, label: str, name: str, size: int, generation_of: Callable[[int], int], chunk_size: int
) -> list[tuple[bytes, int]]:
    """Chunks of one archive: chunk n carries version ``generation_of(n)`` of its content."""
    chunks: list[tuple[bytes, int]] = []
    offset = n = 0
    rng = random.Random(f"{seed}:{label}:{name}:sizes")  # noqa: S311 - test data, not security
    while offset < size:
        if name.endswith(".fidx"):
            length = min(chunk_size, size - offset)
        else:
            # dynamic chunks vary around a quarter of the fixed size (the chunker's 4 MiB average
            # would be too coarse for small simulated archives)
            length = min(rng.randint(chunk_size // 8, chunk_size // 2), size - offset)
        chunks.append((seeded_digest(seed, label, name, n, generation_of(n)), length))
        offset += length
        n += 1
    return chunks


def fill_from_state(
    content: ContentStore,
    state: State,
    *,
    seed: int = 0,
    change_rate: float = 0.1,
    chunk_size: int = FIXED_CHUNK_SIZE,
) -> int:
    """Give every finished snapshot of ``state`` seeded content; returns how many were added.

    How the seeded chunks deduplicate, as real backups do:

    - groups with the same backup type and id share their first generation of
      content, in any namespace or datastore (tenants backing up the same
      template VM);
    - each later snapshot of a group re-uses the previous snapshot's chunks and
      changes about ``change_rate`` of them (incremental backups);
    - a fixed index's chunks are ``chunk_size`` long, a dynamic index's vary.

    Archive sizes are the ones the state records; blobs other than the manifest
    get seeded bytes of their recorded size. Snapshots already in ``content``
    and snapshots without a manifest are skipped; content is built lazily, so
    a large state costs nothing until a snapshot is read. Idempotent.
    """
    added = 0
    known = set(content.refs())
    for ref, group, snapshot in _finished_snapshots(state):
        if ref in known:
            continue
        label = f"{group.backup_type}/{group.backup_id}"
        history = [t for t in sorted(group.snapshots) if t <= ref.backup_time]
        files = [(name, size or 0) for name, size in snapshot.files if name != fmt.MANIFEST_BLOB_NAME]
        content.put_lazy(
            ref, _seeded_builder(ref, group.owner, files, label, history, seed, change_rate, chunk_size)
        )
        added += 1
    return added


def _finished_snapshots(state: State) -> Iterator[tuple[SnapshotRef, Any, Any]]:
    """Every snapshot of ``state`` with a manifest, as (ref, its group, the snapshot)."""
    for store_name, datastore in state.datastores.items():
        for ns, groups in datastore.groups.items():
            for group in groups.values():
                for backup_time, snapshot in group.snapshots.items():
                    if snapshot.manifest:
                        ref = SnapshotRef(store_name, ns, group.backup_type, group.backup_id, backup_time)
                        yield ref, group, snapshot


def sync_with_state(
    content: ContentStore,
    state: State,
    *,
    seed: int = 0,
    change_rate: float = 0.1,
    chunk_size: int = FIXED_CHUNK_SIZE,
) -> tuple[int, int]:
    """Make ``content`` hold exactly the finished snapshots of ``state``; returns (added, removed).

    Snapshots removed from the state (pruned, forgotten, their namespace or datastore
    deleted) lose their content; new ones get seeded content (``fill_from_state``).
    """
    live = {ref for ref, _group, _snapshot in _finished_snapshots(state)}
    removed = 0
    for ref in content.refs():
        if ref not in live:
            content.remove_snapshot(ref)
            removed += 1
    added = fill_from_state(content, state, seed=seed, change_rate=change_rate, chunk_size=chunk_size)
    return added, removed


def _seeded_builder(
    ref: SnapshotRef,
    owner: str,
    files: list[tuple[str, int]],
    label: str,
    history: list[int],
    seed: int,
    change_rate: float,
    chunk_size: int,
) -> Builder:
    def build() -> SnapshotContent:
        archives: list[ArchiveSpec] = []
        blobs: dict[str, bytes] = {}
        for name, size in files:
            if name.endswith((".fidx", ".didx")):

                def generation_of(n: int, name: str = name) -> int:
                    # The newest snapshot in this group's history that changed chunk n.
                    for generation in range(len(history) - 1, 0, -1):
                        roll = int.from_bytes(seeded_digest(seed, label, name, n, "change", history[generation])[:4])
                        if roll < change_rate * 2**32:
                            return history[generation]
                    return 0  # the template generation, shared by every group with this label

                chunks = _archive_chunks(seed, label, name, size, generation_of, chunk_size)
                archives.append(ArchiveSpec(name, chunks, chunk_size))
            else:
                payload = seeded_digest(seed, ref, name) * (max(size - 12, 0) // 32 + 1)
                blobs[name] = fmt.encode_blob(payload[: max(size - 12, 0)], compress=False)
        return build_content(ref, owner, archives, blobs)

    return build
