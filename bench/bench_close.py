"""Close a month for 10,000 tenants with 30 daily samples each (--quick: 1,000).

Prints ``figure<TAB>value<TAB>floor<TAB>ratio``. The floor is the time to read the
month's samples once (a bare streamed SELECT of the same rows): no close can do less.
Runs against a throwaway SQLite database in a temporary directory.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from _billing_common import fast_insert, setup_django

PERIOD = "2025-01"
DAYS = 30


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


def main() -> int:
    quick = "--quick" in sys.argv
    tenants = 1_000 if quick else 10_000
    with tempfile.TemporaryDirectory(prefix="bench-close-") as tmp:
        setup_django(Path(tmp))
        t0 = time.perf_counter()
        seed(tenants)
        print(f"seeded {tenants} tenants x {DAYS} days in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        from billing.models import Invoice, InvoiceLine
        from billing.services import billing_period_close

        floor = min(floor_read() for _ in range(3))
        started = time.perf_counter()
        result = billing_period_close(period=PERIOD, today=dt.date(2025, 2, 1))
        elapsed = time.perf_counter() - started
        assert result.created == tenants, result
        again = time.perf_counter()
        assert billing_period_close(period=PERIOD, today=dt.date(2025, 2, 1)).created == 0
        again = time.perf_counter() - again
        print(
            f"{Invoice.objects.count()} invoices, {InvoiceLine.objects.count()} lines, totals {result.totals}",
            file=sys.stderr,
        )
    print(f"close_{tenants}_tenants_{DAYS}_days_s\t{elapsed:.2f}\t{floor:.2f}\t{elapsed / floor:.1f}")
    print(f"close_per_tenant_ms\t{elapsed / tenants * 1000:.3f}\t-\t-")
    print(f"close_again_noop_s\t{again:.3f}\t-\t-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
