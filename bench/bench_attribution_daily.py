"""Benchmark: the daily chunk-exact run over HTTPS, first measurement and the days after.

A simulated PBS (``pbssim``, seeded content, real HTTPS with a pinned fingerprint) holds
40 tenants (--quick: 8), each with a shared template VM and a VM of its own, 10 daily
snapshots per group (256 MiB, 64 fixed chunks of 4 MiB, plus a config blob). Then:

- day 1: the first measurement reads every snapshot;
- day 2: every group gets one new snapshot and loses its oldest (a prune);
- day 3: nothing changed.

Per new snapshot the floor is one reader session (the upgrade request), its manifest and
each index it lists, and exactly those files' bytes; an unchanged day's floor is no reader
request and no byte. The listing (one namespace list, one snapshot list per namespace, one
GC status) is reported apart: it is the same every day.

    .venv/bin/python bench/bench_attribution_daily.py [--quick]

Output lines: ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict``.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

from _billing_common import setup_django

GROUP_SNAPSHOTS = 10
SIZE = 256 * 2**20
T0 = 1_767_225_600  # 2026-01-01
DAY = 86400


def _line(figure: str, value: object, floor: object, target: object, met: bool | None) -> None:
    verdict = "-" if met is None else "met" if met else "MISSED"
    print(f"{figure}\t{value}\t{floor}\t{target}\t{verdict}", flush=True)


def main() -> int:
    tenants_n = 8 if "--quick" in sys.argv else 40
    with tempfile.TemporaryDirectory(prefix="bench-attribution-daily-") as tmp:
        setup_django(Path(tmp))
        from attribution.models import AttributionRun, SnapshotIndex
        from attribution.services.runs import attribution_collect
        from core.crypto import encrypt_secret
        from pbssim.server import SimServer
        from pbssim.simulator import Simulator
        from tenants.models import Datastore, PbsHost, Tenant

        sim = Simulator(content=True)
        token_id, secret = sim.bootstrap_admin_token()
        sim.add_datastore("store1", gc_index_data_bytes=8 * 2**40, gc_disk_bytes=2 * 2**40)
        groups = []
        for t in range(tenants_n):
            ns = f"clients/t{t:03d}"
            for backup_id in ("100", str(1000 + t)):  # the template everyone clones, and their own
                groups.append((ns, backup_id))
                for d in range(GROUP_SNAPSHOTS):
                    sim.seed_snapshot(store="store1", ns=ns, backup_type="vm", backup_id=backup_id,
                                      backup_time=T0 + d * DAY, size=SIZE)  # fmt: skip
        server = SimServer(sim).start()
        try:
            host = PbsHost.objects.create(
                name="pbs1", url=server.url, fingerprint=server.fingerprint,
                token_id=token_id, token_secret_enc=encrypt_secret(secret),
            )  # fmt: skip
            ds = Datastore.objects.create(host=host, name="store1")
            for t in range(tenants_n):
                Tenant.objects.create(slug=f"t{t:03d}", name=f"T{t}", status="active", host=host, datastore=ds,
                                      namespace=f"clients/t{t:03d}", pbs_userid=f"t{t:03d}@pbs")  # fmt: skip
            content = sim.content
            assert content is not None

            started = time.perf_counter()
            run1 = attribution_collect(host_id=host.pk, datastore="store1", day=dt.date(2026, 1, 11))
            first_s = time.perf_counter() - started
            run1 = AttributionRun.objects.get(pk=run1.pk)
            assert run1.status == "done", run1.error

            datastore = sim.state.datastores["store1"]
            for ns, backup_id in groups:
                sim.seed_snapshot(store="store1", ns=ns, backup_type="vm", backup_id=backup_id,
                                  backup_time=T0 + GROUP_SNAPSHOTS * DAY, size=SIZE)  # fmt: skip
                datastore.remove_snapshot(datastore.groups[ns][("vm", backup_id)], T0)
            sim.mark_content_stale()
            downloads_before, sessions_before = len(content.downloads), content.sessions_opened
            started = time.perf_counter()
            run2 = attribution_collect(host_id=host.pk, datastore="store1", day=dt.date(2026, 1, 12))
            second_s = time.perf_counter() - started
            run2 = AttributionRun.objects.get(pk=run2.pk)
            new_downloads = content.downloads[downloads_before:]
            new_refs = {ref for ref, _ in new_downloads}
            floor_requests = floor_bytes = 0
            for ref in new_refs:
                files = content.get(ref).files
                names = ["index.json.blob", *sorted(n for n in files if n.endswith((".fidx", ".didx")))]
                floor_requests += 1 + len(names)
                floor_bytes += sum(len(files[n]) for n in names)
            new = run2.snapshots_read
            reader_requests = sum(
                SnapshotIndex.objects.filter(backup_time=T0 + GROUP_SNAPSHOTS * DAY).values_list("requests", flat=True)
            )
            sessions = content.sessions_opened - sessions_before
            listing = run2.requests - reader_requests

            downloads_before, sessions_before = len(content.downloads), content.sessions_opened
            run3 = attribution_collect(host_id=host.pk, datastore="store1", day=dt.date(2026, 1, 13))
            run3 = AttributionRun.objects.get(pk=run3.pk)
            unchanged_downloads = len(content.downloads) - downloads_before
            unchanged_sessions = content.sessions_opened - sessions_before
        finally:
            server.stop()

    snapshots = len(groups) * GROUP_SNAPSHOTS
    _line(f"first run: {snapshots} snapshots read over HTTPS, s", f"{first_s:.1f}", "-", "-", None)
    _line(f"first run: ms per snapshot ({snapshots})", f"{1000 * first_s / snapshots:.1f}", "-", "-", None)
    _line(f"day 2: new snapshots read / dropped ({len(groups)} each)",
          f"{run2.snapshots_read}/{run2.snapshots_dropped}", f"{len(groups)}/{len(groups)}", "= floor",
          (run2.snapshots_read, run2.snapshots_dropped) == (len(groups), len(groups)))  # fmt: skip
    _line("day 2: PBS reader requests per new snapshot", f"{reader_requests / new:.2f}",
          f"{floor_requests / new:.2f}", "= floor", reader_requests == floor_requests and sessions == new)  # fmt: skip
    _line("day 2: bytes downloaded per new snapshot", f"{run2.bytes_downloaded / new:.0f}",
          f"{floor_bytes / new:.0f}", "= floor", run2.bytes_downloaded == floor_bytes)  # fmt: skip
    # one namespace list, a snapshot list for each namespace (root, clients, one per tenant), the GC status
    _line("day 2: listing requests (namespaces, snapshots, GC)", listing, tenants_n + 4, "= floor",
          listing == tenants_n + 4)  # fmt: skip
    _line("day 2: wall time, s", f"{second_s:.2f}", "-", "-", None)
    _line("day 3 (unchanged): reader sessions + downloads, bytes", f"{unchanged_sessions + unchanged_downloads}, "
          f"{run3.bytes_downloaded}", "0, 0", "= floor",
          unchanged_sessions + unchanged_downloads == 0 and run3.bytes_downloaded == 0)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
