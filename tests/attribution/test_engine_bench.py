"""The attribution benchmark's synthetic datastore has the promised shape, and the engine gets it right."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np

from attribution.engine import attribute
from tests.attribution.test_engine import reference

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_attribution.py"


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_attribution", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_synthetic_datastore_is_deterministic_and_shaped_like_the_target() -> None:
    bench = bench_module()
    owners = bench.generate(20_000, 7)
    assert len(owners) == bench.TENANTS + 1
    digests = np.concatenate([d for snaps in owners.values() for d, _ in snaps])
    assert len(np.unique(digests)) == 20_000  # exactly the distinct chunks asked for
    assert 9 <= len(digests) / 20_000 <= 11  # about ten references per chunk
    for snaps in owners.values():
        for d, s in snaps:
            assert np.all(d[1:] > d[:-1])  # sorted and unique, as stored
            assert s.dtype == np.uint32
            assert s.min() > 0
            assert s.max() <= 4 * 2**20
    again = bench.generate(20_000, 7)
    assert all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for key in owners
        for a, b in zip(owners[key], again[key], strict=True)
    )


def test_the_engine_matches_the_reference_on_the_benchmark_data() -> None:
    owners = bench_module().generate(20_000, 3)
    expected, distinct_chunks, distinct_bytes = reference(owners)
    result = attribute(owners, refs_per_bucket=20_000)  # about ten buckets
    assert result.figures == expected
    assert (result.distinct_chunks, result.distinct_bytes) == (distinct_chunks, distinct_bytes)
    shared = [f for f in result.figures.values() if f.exclusive < f.referenced]
    assert len(shared) == len(owners)  # every owner shares its template with others
    assert sum(f.share for f in result.figures.values()) == distinct_bytes
