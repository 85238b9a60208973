"""Close a month for 10,000 tenants with 30 daily samples each, and for 2,000 (--quick:
2,000 and 1,000), each in a fresh process over a freshly seeded throwaway SQLite database.

Prints ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict``. The time floor is reading the
month's samples once (a bare streamed SELECT of the same rows): no close can do less. The
target (3 s at 10,000 tenants) is issue 16's. Memory: the close process's peak resident set
(VmHWM, reset just before the close) at both sizes; the close's own growth (peak minus the
resident set before it) may differ between them by at most a few MiB: flat in the tenants.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _billing_common import fast_insert, report, reset_peak_rss, rss_kib, setup_django

PERIOD = "2025-01"
DAYS = 30
TARGET_S = 3.0  # issue 16: the close of 10,000 tenants x 30 days
FLAT_MIB = 8.0  # the close's own memory may grow this much from 2,000 to 10,000 tenants


def seed(tenants: int) -> None:
    from decimal import Decimal

    from billing.models import UsageSample
    from plans.models import Plan
    from tenants.models import Datastore, PbsHost, Tenant

    host = PbsHost.objects.create(name="pbs1", url="https://pbs1.invalid:8007", token_id="bench@pbs!metering")  # noqa: S106 (an id, not a secret)
    store = Datastore.objects.create(host=host, name="store1")
    plans = [
        Plan.objects.create(
            name="logical", metric="logical", included_gib=Decimal("10"), price_per_gib=Decimal("0.02")
        ),
        Plan.objects.create(name="latest", metric="latest", base_fee=Decimal("5"), price_per_gib=Decimal("0.03")),
        Plan.objects.create(
            name="physical", metric="physical", minimum_charge=Decimal("9.99"), price_per_gib=Decimal("0.05")
        ),
    ]
    activated = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    fast_insert(
        Tenant(status="active", host=host, datastore=store, activated_at=activated, name="", slug=""),
        tenants,
        lambda i: {
            "slug": f"t{i:06d}",
            "name": f"Tenant {i}",
            "namespace": f"clients/t{i:06d}",
            "plan_id": plans[i % 3].pk,
        },
    )
    start = dt.date(2025, 1, 1)
    taken = dt.datetime(2025, 1, 1, 2, tzinfo=dt.UTC)
    ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    # A few gaps, as in real life: skip every 97th (tenant, day).
    cells = [(n, d) for n in range(len(ids)) for d in range(DAYS) if (n + d) % 97]

    def sample(i: int) -> dict[str, object]:
        n, d = cells[i]
        logical = (50 + n % 400 + d) * 2**30
        return {
            "tenant_id": ids[n],
            "day": start + dt.timedelta(days=d),
            "logical_bytes": logical,
            "latest_bytes": logical // 3,
            "physical_estimate_bytes": logical // 4,
        }

    template = UsageSample(
        tenant_id=ids[0],
        day=start,
        taken_at=taken,
        host_name="pbs1",
        datastore="store1",
        namespace="clients/x",
        logical_bytes=0,
        latest_bytes=0,
        snapshot_count=20,
        group_count=2,
        namespace_count=1,
    )
    fast_insert(template, len(cells), sample)


def floor_read() -> float:
    from billing.models import UsageSample

    started = time.perf_counter()
    for _ in (
        UsageSample.objects.filter(day__gte=dt.date(2025, 1, 1), day__lte=dt.date(2025, 1, 31))
        .order_by("tenant_id", "day")
        .values_list("tenant_id", "day", "logical_bytes", "latest_bytes", "physical_estimate_bytes")
        .iterator(chunk_size=5000)
    ):
        pass
    return time.perf_counter() - started


def close_once(tenants: int) -> dict[str, float]:
    """In a fresh process over a seeded database: the floor, the close, its peak memory."""
    import gc

    from billing.models import Invoice, InvoiceLine
    from billing.services import billing_period_close

    floor = min(floor_read() for _ in range(3))
    gc.collect()
    reset_peak_rss()
    before = rss_kib()
    started = time.perf_counter()
    cpu = time.process_time()
    result = billing_period_close(period=PERIOD, today=dt.date(2025, 2, 1))
    cpu = time.process_time() - cpu
    elapsed = time.perf_counter() - started
    peak = rss_kib("VmHWM")
    assert result.created == tenants, result
    again = time.perf_counter()
    assert billing_period_close(period=PERIOD, today=dt.date(2025, 2, 1)).created == 0
    again = time.perf_counter() - again
    print(
        f"{tenants} tenants: {Invoice.objects.count()} invoices, {InvoiceLine.objects.count()} lines, "
        f"totals {result.totals}; close {elapsed:.2f} s wall, {cpu:.2f} s CPU",
        file=sys.stderr,
    )
    return {"elapsed": elapsed, "cpu": cpu, "floor": floor, "again": again, "rss_before_kib": before, "peak_kib": peak}


def measure(tenants: int) -> dict[str, float]:
    """Seed ``tenants`` in one child process, close in another (so the peak is the close's)."""
    with tempfile.TemporaryDirectory(prefix="bench-close-") as tmp:
        for step in ("--seed", "--close"):
            proc = subprocess.run(
                [sys.executable, __file__, step, str(tenants), tmp], capture_output=True, text=True, check=False
            )
            sys.stderr.write(proc.stderr)
            if proc.returncode != 0:
                raise RuntimeError(f"{step} {tenants} failed (exit {proc.returncode})")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def child(step: str, tenants: int, workdir: Path) -> int:
    setup_django(workdir)
    if step == "--seed":
        t0 = time.perf_counter()
        seed(tenants)
        print(f"seeded {tenants} tenants x {DAYS} days in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    else:
        print(json.dumps(close_once(tenants)))
    return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] in ("--seed", "--close"):
        return child(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
    quick = "--quick" in sys.argv
    small, big = (1_000, 2_000) if quick else (2_000, 10_000)
    results = {n: measure(n) for n in (small, big)}
    r = results[big]
    report(f"close_{big}_tenants_{DAYS}_days_s", r["elapsed"], floor=r["floor"], target=TARGET_S if not quick else None)
    report(f"close_{big}_tenants_cpu_s", r["cpu"], floor=r["floor"])
    report(f"close_{small}_tenants_{DAYS}_days_s", results[small]["elapsed"], floor=results[small]["floor"])
    report("close_per_tenant_ms", r["elapsed"] / big * 1000, fmt="{:.3f}")
    report("close_again_noop_s", r["again"], fmt="{:.3f}")
    # Memory: the close process's peak resident set (the floor column: its size before the close).
    for n in (small, big):
        peak, before = results[n]["peak_kib"] / 1024, results[n]["rss_before_kib"] / 1024
        report(f"close_peak_rss_{n}_tenants_MiB", peak, floor=before, fmt="{:.1f}")
    growth = [(results[n]["peak_kib"] - results[n]["rss_before_kib"]) / 1024 for n in (small, big)]
    report(f"close_rss_growth_{small}_to_{big}_tenants_MiB", growth[1] - growth[0], target=FLAT_MIB, fmt="{:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
