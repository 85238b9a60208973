"""Metering 5,000 tenants on 5 simulated PBS hosts, 20 snapshots each, 10 ms per request.

(--quick: 500 tenants.) Each host is a separate simulator reached through the in-process
async transport with 10 ms latency per request; each tenant has its namespace plus one
below it (10 snapshots in each), so a tenant costs 3 requests (namespace list, two
snapshot lists) and each host one more (GC status).

Prints ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict``. The floor is requests x latency / total
concurrency (the sum of the hosts' connection limits): no client can finish sooner. The
wall time is the whole ``manage.py billing collect`` path: run start, the collection of all
hosts at once in one event loop, and storing the samples.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

from _billing_common import fast_insert, setup_django

HOSTS = 5
SNAPSHOTS = 20
LATENCY_MS = 10.0
MAX_CONNECTIONS = 8
T0 = 1_735_689_600


def _worker(run_id: int, host_id: int, tenant_ids: list[int]) -> None:
    from billing.tasks import metering_collect_host

    metering_collect_host(run_id, host_id, tenant_ids)


def _check(run, sims, tenants: int) -> int:  # type: ignore[no-untyped-def]
    """The run sampled every tenant with the right figures; returns the PBS requests made."""
    from billing.models import MeteringRun, UsageSample

    assert run.status == MeteringRun.Status.OK, (run.status, [r.error for r in run.host_results.all()])
    assert UsageSample.objects.filter(run=run).count() == tenants
    sample = UsageSample.objects.get(run=run, tenant__slug="h0t00001")
    assert sample.logical_bytes == sum(2 * 2**30 + s for s in range(SNAPSHOTS)), sample.logical_bytes
    assert sample.group_count == 4  # ids 100/102 in the tenant ns, 101/103 in prod
    assert sample.namespace_count == 2
    return sum(len(sim.request_log) for sim in sims)


def main() -> int:
    quick = "--quick" in sys.argv
    tenants = 500 if quick else 5_000
    per_host = tenants // HOSTS
    with tempfile.TemporaryDirectory(prefix="bench-metering-") as tmp:
        # Quota checks enqueue a Celery task per sample; an in-memory broker keeps that cost
        # in the figure without needing Redis.
        os.environ.setdefault("CELERY_BROKER_URL", "memory://")
        os.environ.setdefault("CELERY_RESULT_BACKEND", "cache+memory://")
        setup_django(Path(tmp))
        from django.conf import settings
        from django.db import connections

        from billing import services
        from billing.models import MeteringRun
        from core.crypto import encrypt_secret
        from pbssim import FaultConfig, Simulator
        from tenants.models import Datastore, PbsHost, Tenant
        from tenants.pbs import install_transport

        settings.PORTAL_METERING_CHUNK_SIZE = per_host  # one chunk per host
        t0 = time.perf_counter()
        sims = []
        for h in range(HOSTS):
            sim = Simulator()
            token_id, secret = sim.bootstrap_admin_token()
            sim.add_datastore("store1", gc_index_data_bytes=8 * 2**40, gc_disk_bytes=2 * 2**40)
            for t in range(per_host):
                slug = f"h{h}t{t:05d}"
                for s in range(SNAPSHOTS):
                    sim.seed_snapshot(
                        store="store1",
                        ns=f"clients/{slug}" + ("/prod" if s % 2 else ""),
                        backup_type="vm",
                        backup_id=str(100 + s % 4),
                        backup_time=T0 + s * 3600,
                        size=(t % 50 + 1) * 2**30 + s,
                    )
            sim.faults = FaultConfig(latency_ms=LATENCY_MS)
            host = PbsHost.objects.create(
                name=f"pbs{h}",
                url=f"https://pbs{h}.bench.invalid:8007",
                token_id=token_id,
                token_secret_enc=encrypt_secret(secret),
                max_connections=MAX_CONNECTIONS,
            )
            store = Datastore.objects.create(host=host, name="store1")
            install_transport(host.url, async_transport=sim.async_transport())
            fast_insert(
                Tenant(status="active", host=host, datastore=store, name="", slug=""),
                per_host,
                lambda i, h=h: {
                    "slug": f"h{h}t{i:05d}",
                    "name": f"Tenant {h}-{i}",
                    "namespace": f"clients/h{h}t{i:05d}",
                },
            )
            sims.append(sim)
        print(f"seeded {tenants} tenants x {SNAPSHOTS} snapshots in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        # 1. `manage.py billing collect`: one process, every host at once in one event loop.
        started = time.perf_counter()
        run = services.metering_run_start(trigger=MeteringRun.Trigger.COMMAND)
        run = services.metering_collect_run_inline(run=run)
        inline = time.perf_counter() - started
        requests = _check(run, sims, tenants)
        collect_only = max(r.duration_ms for r in run.host_results.all()) / 1000

        # 2. The Celery fan-out: one worker process per host chunk, each running the task
        #    body (metering_collect_host) as a worker would. Forked after seeding, so every
        #    worker reaches the same simulators.
        for sim in sims:
            sim.request_log.clear()
        started = time.perf_counter()
        run = services.metering_run_start(trigger=MeteringRun.Trigger.SCHEDULE)
        chunks = list(run.host_results.values_list("host_id", "tenant_ids"))
        connections.close_all()
        ctx = multiprocessing.get_context("fork")
        workers = [ctx.Process(target=_worker, args=(run.pk, host_id, ids)) for host_id, ids in chunks]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert all(w.exitcode == 0 for w in workers), [w.exitcode for w in workers]
        fanout = time.perf_counter() - started
        run.refresh_from_db()
        _check(run, [], tenants)
        print(f"{requests} PBS requests per run", file=sys.stderr)

    concurrency = HOSTS * MAX_CONNECTIONS
    floor = requests * LATENCY_MS / 1000 / concurrency
    # figure, value, floor, target, verdict (no target for these: they are watched, not gated)
    print(f"metering_{tenants}_tenants_inline_wall_s\t{inline:.2f}\t{floor:.2f}\t-\t-")
    print(f"metering_inline_collect_only_s\t{collect_only:.2f}\t{floor:.2f}\t-\t-")
    print(f"metering_{tenants}_tenants_fanout_{HOSTS}_workers_s\t{fanout:.2f}\t{floor:.2f}\t-\t-")
    print(f"metering_requests\t{requests}\t-\t-\t-")
    return 0


if __name__ == "__main__":
    sys.exit(main())
