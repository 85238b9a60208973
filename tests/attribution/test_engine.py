"""The attribution engine against a plain Python reference implementation (no database)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from attribution import engine
from attribution.engine import REFS_PER_BUCKET, Attribution, Figures, attribute

OTHERS = 2**62  # the key of the namespaces of no tenant: sorts after every tenant id

Snapshots = list[tuple[np.ndarray, np.ndarray]]


def snap(digests: list[int], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(digests, dtype=np.uint64), np.array(sizes, dtype=np.uint32)


def reference(owners: dict[int, Snapshots]) -> tuple[dict[int, Figures], int, int]:
    """Figures by the letter of the rules, one chunk at a time in plain Python."""
    size_of: dict[int, int] = {}
    holders: dict[int, list[int]] = defaultdict(list)
    for key in sorted(owners):
        seen: set[int] = set()
        for digests, sizes in owners[key]:
            for digest, size in zip(digests.tolist(), sizes.tolist(), strict=True):
                size_of.setdefault(digest, size)
                if digest not in seen:
                    seen.add(digest)
                    holders[digest].append(key)
    figures = {key: [0, 0, 0] for key in owners}
    for digest, keys in holders.items():
        size, n = size_of[digest], len(keys)
        for rank, key in enumerate(keys):  # keys are in ascending order: owners were visited so
            figures[key][0] += size
            figures[key][1] += size if n == 1 else 0
            figures[key][2] += size // n + (1 if rank < size % n else 0)
    expected = {key: Figures(*values) for key, values in figures.items()}
    return expected, len(size_of), sum(size_of.values())


def random_datastore(seed: int) -> dict[int, Snapshots]:
    """Uneven owners sharing a template pool; incremental snapshots repeat most chunks."""
    rng = np.random.default_rng(seed)
    pool = np.unique(rng.integers(0, 2**64, size=3000, dtype=np.uint64, endpoint=False))
    rng.shuffle(pool)
    pool_sizes = rng.integers(1, 4 * 2**20, size=len(pool), dtype=np.uint32)
    template = np.arange(200)  # every owner may reference these: chunks shared by many
    owners: dict[int, Snapshots] = {}
    for key in [*rng.choice(10_000, size=int(rng.integers(2, 12)), replace=False).tolist(), OTHERS]:
        snapshots = []
        own = rng.choice(len(pool), size=int(rng.integers(1, 600)), replace=False)
        for _ in range(int(rng.integers(0, 6))):  # some owners have no snapshot at all
            picked = np.union1d(own[rng.random(len(own)) < 0.8], template[rng.random(len(template)) < 0.3])
            rng.shuffle(picked)  # the engine must not rely on sorted input
            snapshots.append((pool[picked], pool_sizes[picked]))
        owners[key] = snapshots
    return owners


def assert_matches_reference(owners: dict[int, Snapshots], **options: int) -> Attribution[int]:
    result = attribute(owners, **options)
    expected, distinct_chunks, distinct_bytes = reference(owners)
    assert result.figures == expected
    assert (result.distinct_chunks, result.distinct_bytes) == (distinct_chunks, distinct_bytes)
    return result


@pytest.mark.parametrize("refs_per_bucket", [REFS_PER_BUCKET, 64])
@pytest.mark.parametrize("seed", range(8))
def test_random_datastores_match_the_reference(seed: int, refs_per_bucket: int) -> None:
    owners = random_datastore(seed)
    result = assert_matches_reference(owners, refs_per_bucket=refs_per_bucket)
    assert sum(f.share for f in result.figures.values()) == result.distinct_bytes
    for figures in result.figures.values():
        assert 0 <= figures.exclusive <= figures.share <= figures.referenced
    assert sum(f.exclusive for f in result.figures.values()) <= result.distinct_bytes
    assert max(f.referenced for f in result.figures.values()) <= result.distinct_bytes
    assert result.distinct_chunks > 0


@pytest.mark.parametrize("refs_per_bucket", [REFS_PER_BUCKET, 1])  # 1: 8 buckets, 2**63 starts one
def test_a_chunk_shared_by_three_owners_gives_its_leftover_to_the_lowest_keys(refs_per_bucket: int) -> None:
    # X (10 bytes) is referenced by 1, 2 and 3: 10 // 3 = 3 each, the leftover byte to owner 1.
    # Y (7 bytes) by 2 and 3: 3 each, the leftover to owner 2. Z (5 bytes) by owner 1 only.
    x, y, z = 0xFFFF_FFFF_FFFF_FFFF, 2**63, 1
    owners = {
        3: [snap([y, x], [7, 10])],
        1: [snap([x], [10]), snap([z, x], [5, 10])],  # x twice in one owner counts once
        2: [snap([x, y], [10, 7]), snap([y], [7])],
    }
    result = assert_matches_reference(owners, refs_per_bucket=refs_per_bucket)
    assert result[1] == Figures(referenced=15, exclusive=5, share=4 + 5)
    assert result[2] == Figures(referenced=17, exclusive=0, share=3 + 4)
    assert result[3] == Figures(referenced=17, exclusive=0, share=3 + 3)
    assert (result.distinct_chunks, result.distinct_bytes) == (3, 22)


def test_the_others_key_sorts_last_and_so_gets_no_leftover_byte() -> None:
    owners = {OTHERS: [snap([7], [5])], 4: [snap([7], [5])]}
    result = assert_matches_reference(owners)
    assert result[4].share == 3
    assert result[OTHERS].share == 2


def test_empty_inputs() -> None:
    assert attribute({}) == Attribution()
    assert attribute({}).distinct_bytes == 0
    result = attribute({1: [], 2: [snap([], [])]})
    assert result.figures == {1: Figures(), 2: Figures()}
    assert (result.distinct_chunks, result.distinct_bytes) == (0, 0)


def test_an_owner_without_snapshots_gets_zeros_and_changes_nothing_else() -> None:
    with_idle = {1: [snap([1, 2], [100, 200])], 2: [], 3: [snap([2], [200])]}
    result = assert_matches_reference(with_idle)
    assert result[2] == Figures(0, 0, 0)
    without = attribute({1: with_idle[1], 3: with_idle[3]})
    assert result[1] == without[1]
    assert result[3] == without[3]
    assert result[1] == Figures(referenced=300, exclusive=100, share=200)


def test_large_chunks_do_not_overflow() -> None:
    # 1,000 chunks of 4 GiB - 1 bytes shared by two owners: sums far beyond 32 bits, odd sizes.
    big = 2**32 - 1
    digests = list(range(1, 1001))
    owners = {1: [snap(digests, [big] * 1000)], 2: [snap(digests[::2], [big] * 500)]}
    result = assert_matches_reference(owners)
    assert result.distinct_bytes == 1000 * big
    assert result[1].share == 500 * big + 500 * (big // 2 + 1)


def test_sums_beyond_float_precision_take_the_exact_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_EXACT_FLOAT", 1)
    assert_matches_reference(random_datastore(3), refs_per_bucket=64)


def test_one_size_per_digest_the_first_seen_in_key_order() -> None:
    # Two chunks sharing a 64-bit key is the only way sizes can disagree; the figures stay consistent.
    owners = {2: [snap([9], [50])], 1: [snap([9], [40]), snap([9], [60])]}
    result = assert_matches_reference(owners)
    assert result.distinct_bytes == 40
    assert result[1] == Figures(referenced=40, exclusive=0, share=20)
    assert result[2] == Figures(referenced=40, exclusive=0, share=20)


def test_any_iterable_of_snapshots_is_accepted() -> None:
    owners = {1: (pair for pair in [snap([1], [3]), snap([2], [4])]), 2: (snap([2], [4]),)}
    result = attribute(owners)
    assert result[1] == Figures(referenced=7, exclusive=3, share=5)


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ((np.array([1, 2], dtype=np.int64), np.array([1, 2], dtype=np.uint32)), "uint64"),
        ((np.array([1, 2], dtype=np.uint64), np.array([1], dtype=np.uint32)), "same length"),
        ((np.array([[1]], dtype=np.uint64), np.array([[1]], dtype=np.uint32)), "1-d"),
        ((np.array([1], dtype=np.uint64), np.array([1.5])), "integers"),
    ],
)
def test_bad_input_is_a_clear_error(pair: tuple[np.ndarray, np.ndarray], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        attribute({1: [pair]})


def test_sizes_of_another_integer_type_are_accepted_when_they_fit() -> None:
    result = attribute({1: [(np.array([5, 3], dtype=np.uint64), np.array([2**32 - 1, 7], dtype=np.int64))]})
    assert result[1] == Figures(referenced=2**32 + 6, exclusive=2**32 + 6, share=2**32 + 6)
    with pytest.raises(ValueError, match="32 bits"):
        attribute({1: [(np.array([5], dtype=np.uint64), np.array([2**32], dtype=np.int64))]})
    with pytest.raises(ValueError, match="32 bits"):
        attribute({1: [(np.array([5], dtype=np.uint64), np.array([-1], dtype=np.int64))]})


def test_repeated_digests_within_a_snapshot_count_once() -> None:
    owners = {1: [snap([4, 2, 4, 9], [10, 20, 30, 40])], 2: [snap([9], [40])]}
    result = assert_matches_reference(owners)
    assert result[1] == Figures(referenced=70, exclusive=30, share=50)


def test_read_only_inputs_are_read_and_never_changed() -> None:
    # Stored indexes arrive as read-only np.frombuffer views; unsorted ones are sorted in a copy.
    unsorted = snap([2**64 - 1, 0, 2**63, 5], [1, 2, 3, 4])
    stored = snap([0, 5, 2**63], [2, 4, 3])
    copies = [(d.copy(), s.copy()) for d, s in (unsorted, stored)]
    for digests, sizes in (unsorted, stored):
        digests.flags.writeable = False
        sizes.flags.writeable = False
    owners = {1: [unsorted], 2: [stored]}
    for refs_per_bucket in (REFS_PER_BUCKET, 1):
        result = assert_matches_reference(owners, refs_per_bucket=refs_per_bucket)
        assert result[1] == Figures(referenced=10, exclusive=1, share=1 + 1 + 2 + 2)
    for (digests, sizes), (digests_before, sizes_before) in zip((unsorted, stored), copies, strict=True):
        assert np.array_equal(digests, digests_before)
        assert np.array_equal(sizes, sizes_before)
