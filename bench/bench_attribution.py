"""Benchmark: chunk-exact attribution of a datastore of 200 tenants, from 1 to 10 million distinct chunks.

Synthetic data, deterministic from a seed, shaped like real backups:

- 200 tenants plus the namespaces of no tenant (one more owner), their sizes
  uneven (log-normal weights);
- five OS templates of ``distinct / 2000`` chunks each; every owner backs up
  one of them in full, so each template chunk is shared by about 40 owners;
- each owner keeps 6 to 14 snapshots; a snapshot references the owner's disk
  (a sliding window over its own chunks: 1 % of the chunks change from one
  snapshot to the next) plus its template;
- chunk sizes up to 4 MiB (three in four exactly 4 MiB, as a fixed index
  writes them), uncompressed; digests are the uint64 keys of
  ``pbsclient.backup_format.compact``, sorted per snapshot as the stored
  snapshot indexes keep them.

That gives exactly ``distinct`` chunks and about ten references per chunk.
Each size runs in a fresh process: generate, then time ``attribute()`` and
read the peak resident memory of the process (``ru_maxrss``, input arrays
included). Floors: for time, one ``np.sort`` of all the references (the
digests alone, concatenated), timed in the same process (a stable sort, which
merges the already sorted snapshots, is reported alongside); for memory, the
input arrays themselves. Wall and CPU seconds are both reported: on a shared
machine the wall time depends on the neighbours. Targets (10 M chunks, 100 M references): 60 s, 1.5 GiB.

    .venv/bin/python bench/bench_attribution.py [--quick] [--seed N]

Output lines: ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TENANTS = 200
TEMPLATES = 5
CHANGE_PER_SNAPSHOT = 0.01
CHUNK = 4 * 2**20
OTHERS = sys.maxsize
TARGET_S = 60.0
TARGET_GIB = 1.5
SIZES = {"1M": 1_000_000, "3M": 3_000_000, "10M": 10_000_000}
GIB = 2**30

_M1, _M2, _GOLDEN = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), 0x9E3779B97F4A7C15


def chunk_keys(ids: np.ndarray, seed: int) -> np.ndarray:
    """A bijective mix (splitmix64's finaliser) of chunk ids: distinct ids give distinct, uniform keys."""
    z = ids.astype(np.uint64) + np.uint64((seed * _GOLDEN) % 2**64)
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def chunk_sizes(keys: np.ndarray) -> np.ndarray:
    """A chunk's uncompressed size follows from its key: 4 MiB for three in four, else 64 KiB..4 MiB."""
    variable = np.uint64(64 * 1024) + (keys >> np.uint64(32)) % np.uint64(CHUNK - 64 * 1024)
    return np.where(keys & np.uint64(3), np.uint64(CHUNK), variable).astype(np.uint32)


def generate(distinct: int, seed: int) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    template = max(1, distinct // 2000)
    own_total = distinct - TEMPLATES * template
    keys = [*range(1, TENANTS + 1), OTHERS]
    weights = rng.lognormal(sigma=1.0, size=len(keys))
    own = np.floor(weights / weights.sum() * own_total).astype(np.int64)
    own[: own_total - int(own.sum())] += 1  # exactly own_total chunks in all
    owners: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    base = TEMPLATES * template
    for i, key in enumerate(keys):
        count = int(rng.integers(6, 15))
        change = int(own[i] * CHANGE_PER_SNAPSHOT)
        disk = int(own[i]) - (count - 1) * change
        tpl = (i % TEMPLATES) * template
        snapshots = []
        for j in range(count):
            start = base + j * change
            ids = np.concatenate([np.arange(tpl, tpl + template), np.arange(start, start + disk)])
            digests = chunk_keys(ids, seed)
            digests.sort()
            snapshots.append((digests, chunk_sizes(digests)))
        owners[key] = snapshots
        base += int(own[i])
    assert base == distinct
    return owners


def measure(distinct: int, seed: int) -> dict[str, float | int]:
    """In this (fresh) process: generate, attribute, measure; the floor sort last (it copies everything)."""
    from attribution.engine import attribute

    owners = generate(distinct, seed)
    refs = sum(len(d) for snaps in owners.values() for d, _ in snaps)
    input_bytes = sum(d.nbytes + s.nbytes for snaps in owners.values() for d, s in snaps)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start, cpu = time.perf_counter(), time.process_time()
    result = attribute(owners)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert result.distinct_chunks == distinct, (result.distinct_chunks, distinct)
    assert sum(f.share for f in result.figures.values()) == result.distinct_bytes
    distinct_bytes = result.distinct_bytes
    del result
    all_digests = np.concatenate([d for snaps in owners.values() for d, _ in snaps])
    merged = all_digests.copy()
    sort_start = time.perf_counter()
    all_digests.sort()
    floor = time.perf_counter() - sort_start
    del all_digests
    sort_start = time.perf_counter()
    merged.sort(kind="stable")  # timsort merges the sorted snapshots: what sorted input makes possible
    merge = time.perf_counter() - sort_start
    return {
        "distinct": distinct, "refs": refs, "owners": len(owners), "seconds": seconds, "cpu": cpu,
        "peak": peak, "rss_before": rss_before, "input_bytes": input_bytes, "floor_s": floor, "merge_s": merge,
        "distinct_bytes": distinct_bytes,
    }  # fmt: skip


def run_child(distinct: int, seed: int) -> dict[str, float | int]:
    proc = subprocess.run(
        [sys.executable, __file__, "--one", str(distinct), "--seed", str(seed)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"bench_attribution: the {distinct:,} chunk run failed:\n{proc.stderr}")
    figures: dict[str, float | int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    argv = sys.argv[1:]
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 14
    if "--one" in argv:
        print(json.dumps(measure(int(argv[argv.index("--one") + 1]), seed)))
        return 0
    names = ["1M"] if "--quick" in argv else list(SIZES)
    lines = []
    for name in names:
        m = run_child(SIZES[name], seed)
        print(
            f"{name}: {m['distinct']:,} distinct chunks, {m['refs']:,} references, {m['owners']} owners, "
            f"{m['distinct_bytes'] / 2**40:.1f} TiB; attribute() {m['seconds']:.1f} s wall, {m['cpu']:.1f} s CPU; "
            f"peak RSS {m['peak'] / GIB:.2f} GiB (inputs {m['input_bytes'] / GIB:.2f} GiB, "
            f"RSS before the call {m['rss_before'] / GIB:.2f} GiB); one sort of all references {m['floor_s']:.1f} s "
            f"(a merge of the sorted snapshots, kind='stable': {m['merge_s']:.1f} s)",
            file=sys.stderr, flush=True,
        )  # fmt: skip
        has_target = name == "10M"
        time_verdict = ("met" if m["seconds"] <= TARGET_S else "MISSED") if has_target else "-"
        mem_verdict = ("met" if m["peak"] / GIB <= TARGET_GIB else "MISSED") if has_target else "-"
        lines.append(
            f"attribution_{name}_s\t{m['seconds']:.1f}\t{m['floor_s']:.1f}\t"
            f"{TARGET_S if has_target else '-'}\t{time_verdict}"
        )
        lines.append(
            f"attribution_{name}_peak_gib\t{m['peak'] / GIB:.2f}\t{m['input_bytes'] / GIB:.2f}\t"
            f"{TARGET_GIB if has_target else '-'}\t{mem_verdict}"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
