"""CSV export of 100,000 rows (--quick: 20,000): wall time and peak memory.

Prints ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict``:
- time: the export (read + CSV + encode, written to a null sink, as the streamed download
  does) against the floor of merely reading the same rows from the database;
- memory: the traced peak (tracemalloc) of exporting all rows against exporting a tenth of
  them. Values close together mean memory stays flat as the row count grows.
Runs against a throwaway SQLite database in a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

from _billing_common import fast_insert, setup_django


def seed(rows: int, period_label: str) -> None:
    """``rows`` issued invoices in a closed period (written directly: this measures the export)."""
    from billing.models import BillingPeriod, Invoice
    from billing.pricing import month_bounds
    from tenants.models import Tenant

    start, end = month_bounds(period_label)
    period = BillingPeriod.objects.create(start=start, end=end, status="closed")
    fast_insert(Tenant(status="active", name="", slug=""), rows, lambda i: {"slug": f"t{i:06d}", "name": f"Tenant {i}"})
    ids = list(Tenant.objects.order_by("pk").values_list("pk", flat=True))
    template = Invoice(
        number="",
        period=period,
        tenant_id=ids[0],
        issued_at=dt.datetime(2025, 2, 1, 4, tzinfo=dt.UTC),
        client_name="",
        tenant_slug="",
        host_name="pbs1",
        datastore="store1",
        namespace="",
        plan_name="standard",
        metric="logical",
        currency="EUR",
        included_gib=Decimal("10.00"),
        unit_price=Decimal("0.020000"),
        base_fee=Decimal("5.00"),
        minimum_charge=Decimal("0.00"),
        first_day=start,
        last_day=end,
        active_days=31,
        samples=31,
        gaps=0,
        avg_bytes=Decimal(0),
        avg_gib=Decimal(0),
        peak_gib=Decimal(0),
        billed_gib=Decimal(0),
        billable_gib=Decimal(0),
        snapshots=20,
        groups=2,
        total=Decimal(0),
    )

    def vary(n: int) -> dict[str, object]:
        billed = Decimal(n % 5000) + Decimal("0.37")
        billable = max(Decimal(0), billed - 10)
        return {
            "number": f"INV-2025-{n + 1:06d}",
            "tenant_id": ids[n],
            # Every tenth client name needs neutralising; the others need quoting.
            "client_name": f"=Client {n}" if n % 10 == 0 else f"Client {n}, Ltd",
            "tenant_slug": f"t{n:06d}",
            "namespace": f"clients/t{n:06d}",
            "avg_bytes": billed * 2**30,
            "avg_gib": billed,
            "peak_gib": billed + 1,
            "billed_gib": billed,
            "billable_gib": billable,
            "total": Decimal("5.00") + (billable * Decimal("0.02")).quantize(Decimal("0.01")),
        }

    fast_insert(template, rows, vary)


class NullSink:
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, chunk: bytes) -> None:
        self.bytes += len(chunk)


def export(period_label: str) -> tuple[int, int]:
    """Stream the export of a period into a null sink; (bytes, rows)."""
    from billing import selectors
    from billing.export import csv_chunks

    period = selectors.period_get(period=period_label)
    sink = NullSink()
    for chunk in csv_chunks(selectors.EXPORT_COLUMNS, selectors.export_rows(period=period)):
        sink.write(chunk)
    return sink.bytes, period.invoices.count()


def read_only(period_label: str) -> None:
    from billing import selectors

    period = selectors.period_get(period=period_label)
    for _ in selectors.export_rows(period=period):
        pass


def peak_of(fn, *args) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> int:
    quick = "--quick" in sys.argv
    rows = 20_000 if quick else 100_000
    small = rows // 10
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        setup_django(Path(tmp))
        t0 = time.perf_counter()
        seed(rows, "2025-01")
        print(f"seeded {rows} invoices in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        export("2025-01")  # warm the page cache and Django's caches
        floors, times = [], []
        for _ in range(3):  # interleaved, so machine noise hits both alike
            floors.append(_timed(read_only, "2025-01"))
            started = time.perf_counter()
            size, count = export("2025-01")
            times.append(time.perf_counter() - started)
        assert count == rows
        floor = sorted(floors)[1]
        elapsed = sorted(times)[1]
        peak_full = peak_of(export, "2025-01")
        # The same export over a tenth of the rows: another period with `small` invoices.
        _seed_more(small)
        peak_small = peak_of(export, "2024-12")
        print(f"export: {size / 2**20:.1f} MiB of CSV", file=sys.stderr)
    # figure, value, floor, target, verdict (the memory figure's floor is the small export's peak)
    print(f"export_{rows}_rows_s\t{elapsed:.2f}\t{floor:.2f}\t-\t-")
    print(f"export_{rows}_rows_rows_per_s\t{rows / elapsed:.0f}\t-\t-\t-")
    print(f"export_peak_mem_MiB_{rows}_vs_{small}_rows\t{peak_full / 2**20:.2f}\t{peak_small / 2**20:.2f}\t-\t-")
    return 0


def _timed(fn, *args) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def _seed_more(rows: int) -> None:
    """A second closed period (2024-12) holding copies of the first ``rows`` invoices."""
    from django.db import connection

    from billing.models import BillingPeriod, Invoice
    from billing.pricing import month_bounds

    start, end = month_bounds("2024-12")
    period = BillingPeriod.objects.create(start=start, end=end, status="closed")
    fields = [f for f in Invoice._meta.concrete_fields if not f.primary_key]
    cols = [f.column for f in fields]
    picked = ["%s" if c == "period_id" else ("'INV-2024-' || id" if c == "number" else c) for c in cols]
    table = Invoice._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) "  # noqa: S608 (column names from the model)
            f"SELECT {', '.join(picked)} FROM {table} ORDER BY id LIMIT %s",
            [period.pk, rows],
        )


if __name__ == "__main__":
    sys.exit(main())
