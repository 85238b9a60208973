"""Onboarding benchmark: one tenant, and 200 tenants on 2 hosts, against simulated PBS hosts
over HTTPS with 10 ms latency per PBS request.

Prints ``figure<TAB>value<TAB>floor<TAB>target<TAB>verdict`` lines (verdict ``met``,
``MISSED`` or ``-`` where the figure has no target):

- onboard_1_wall_ms: submit (tenant_onboard) to active, median of 5 tenants. Floor: the
  7 writes PBS needs at minimum (user, namespace, two roles for the user, token, a role
  for the token, prune job: an ACL PUT grants one role), each costing the 10 ms latency.
  Target 120 ms.
- onboard_1_pbs_calls: PBS requests for one tenant (writes, the proof of its effective
  privileges, and any read that proves absence); floor 7 writes, target 9.
- bulk_200_wall_s: 200 tenants, 100 per host, executed as two workers would (one batch per
  host at a time, the two hosts in parallel). Floor: 100 tenants x 7 writes x 10 ms, one
  after the other per host. Target 8 s (scaled to the tenant count with --quick).
- bulk_200_pbs_calls_per_tenant (target 7) and bulk_200_pbs_writes_per_tenant; floor 7.
  The exact counts per tenant are pinned by tests/tenants/test_bulk.py.
- tenant_list_10000_ms: the staff tenant list (first page, a search, a filtered later
  page) with 10,000 tenants, against the same page with the ~200 of the bulk run as peer
  (in the floor column); target 10 ms. tenant_list_queries: SQL queries per page at
  10,000, against the count at ~200.

The run is executed in this process (what a Celery worker does), so Celery's own queueing
delay is not part of the figures. ``--quick`` uses 40 tenants for the bulk figure.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LATENCY_MS = 10.0
FLOOR_WRITES = 7


def setup_django(workdir: Path) -> None:
    from cryptography.fernet import Fernet

    sys.path.insert(0, str(ROOT))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=Fernet.generate_key().decode() * 2,
        PORTAL_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        PORTAL_VAR_DIR=str(workdir),
        PORTAL_CACHE_REDIS="0",
        PORTAL_LOG_LEVEL="WARNING",
        PORTAL_PLACEMENT_RESERVE_GIB="1",
    )
    (workdir / "static").mkdir(exist_ok=True)  # whitenoise looks for STATIC_ROOT
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # SQLite stands in for PostgreSQL here: WAL with normal sync commits like a server
    # database does, instead of an fsync of the whole file per statement.
    from django.db.backends.signals import connection_created

    def tune(sender: Any, connection: Any, **kwargs: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")

    connection_created.connect(tune, weak=False)  # a local function: keep it alive
    from django.db import connection

    connection.close()


class RemoteSim:
    """A simulated PBS host in a process of its own, as a real PBS is another machine (in
    this process its work would share the portal's interpreter lock). The bench reads its
    request log and changes its faults through a pipe."""

    def __init__(self) -> None:
        from django.db import connection

        connection.close()  # the child must not share this process's database connection
        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve_sim, args=(child,), daemon=True)
        self._process.start()
        self.url, self.fingerprint, self.token_id, self.secret = self._pipe.recv()

    def _ask(self, *command: Any) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        return list(self._ask("log"))

    def clear_log(self) -> None:
        self._ask("clear")

    def set_latency(self, latency_ms: float) -> None:
        self._ask("latency", latency_ms)

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(timeout=10)


def _serve_sim(pipe: Any) -> None:
    from pbssim import FaultConfig, SimServer, Simulator

    sim = Simulator()
    token_id, secret = sim.bootstrap_admin_token()
    sim.add_datastore("store1", total_bytes=8 * 2**40, used_bytes=2**40)
    server = SimServer(sim, host="127.0.0.1", port=0)
    server.start()
    pipe.send((server.url, server.fingerprint, token_id, secret))
    while True:
        command, *args = pipe.recv()
        if command == "log":
            pipe.send(list(sim.request_log))
        elif command == "clear":
            sim.request_log.clear()
            pipe.send(None)
        elif command == "latency":
            sim.faults = FaultConfig(latency_ms=args[0])
            pipe.send(None)
        elif command == "stop":
            server.stop()
            pipe.send(None)
            return


def start_host(name: str) -> tuple[RemoteSim, Any]:
    """A simulated PBS over HTTPS, registered in the portal (which connects and checks it)."""
    from tenants import services

    sim = RemoteSim()
    host = services.pbshost_register(
        name=name, url=sim.url, fingerprint=sim.fingerprint, token_id=sim.token_id, token_secret=sim.secret
    )
    sim.set_latency(LATENCY_MS)
    return sim, host


def line(figure: str, value: float, floor: float, target: float | None = None) -> None:
    verdict = "-" if target is None else ("met" if value <= target else "MISSED")
    shown = "-" if target is None else f"{target:.3f}"
    print(f"{figure}\t{value:.3f}\t{floor:.3f}\t{shown}\t{verdict}", flush=True)


def bench_single(sim: Any, host: Any) -> None:
    from tenants import services
    from tenants.models import Tenant
    from tenants.onboarding import run_execute

    walls, calls = [], []
    store = host.datastores.get(name="store1")
    for i in range(5):
        tenant = services.tenant_create(slug=f"single{i}", name=f"Single {i}", datastore=store)
        sim.clear_log()
        started = time.perf_counter()
        run, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
        run_execute(run_id=run.pk)
        walls.append((time.perf_counter() - started) * 1000)
        calls.append(len(sim.request_log))
        assert Tenant.objects.get(pk=tenant.pk).status == Tenant.Status.ACTIVE
    line("onboard_1_wall_ms", statistics.median(walls), FLOOR_WRITES * LATENCY_MS, 120)
    line("onboard_1_pbs_calls", statistics.median(calls), FLOOR_WRITES, 9)


def _bulk_worker(run_ids: list[int], size: int) -> None:
    """A worker process: the host's runs in batches, as onboarding_batch_execute does."""
    from django.db import connections

    from tenants.onboarding import batch_execute

    try:
        for i in range(0, len(run_ids), size):
            batch_execute(run_ids=run_ids[i : i + size])
    finally:
        connections.close_all()


def bench_bulk(hosts: list[tuple[RemoteSim, Any]], count: int) -> None:
    from django.conf import settings
    from django.db import connection

    from tenants import services
    from tenants.models import OnboardingRun, Tenant

    per_host = count // len(hosts)
    ids_by_host: dict[int, list[int]] = {}
    for h, (_sim, host) in enumerate(hosts):
        store = host.datastores.get(name="store1")
        tenants = [
            services.tenant_create(slug=f"bulk{h}-{i:03d}", name=f"Bulk {h}/{i}", datastore=store)
            for i in range(per_host)
        ]
        runs = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants], enqueue=False)
        ids_by_host[host.pk] = [r.pk for r in runs]
    for sim, _host in hosts:
        sim.clear_log()
    size = settings.PORTAL_ONBOARDING_BATCH_SIZE
    # One worker process per host, as two Celery workers are two processes: threads of
    # this process would share one interpreter lock with each other and with both
    # simulated hosts, which no deployment does.
    connection.close()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_bulk_worker, args=(ids, size)) for ids in ids_by_host.values()]
    started = time.perf_counter()
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    wall = time.perf_counter() - started
    if any(process.exitcode for process in workers):
        print(f"bulk: a worker failed: {[process.exitcode for process in workers]}", file=sys.stderr)
        raise SystemExit(1)
    done = OnboardingRun.objects.filter(status="succeeded", tenant__slug__startswith="bulk").count()
    active = Tenant.objects.filter(status="active", slug__startswith="bulk").count()
    if done != per_host * len(hosts) or active != done:
        print(f"bulk: only {done} runs succeeded, {active} tenants active", file=sys.stderr)
        raise SystemExit(1)
    requests = [entry for sim, _h in hosts for entry in sim.request_log]
    writes = [entry for entry in requests if entry[0] != "GET"]
    total = per_host * len(hosts)
    line(f"bulk_{total}_wall_s", wall, per_host * FLOOR_WRITES * LATENCY_MS / 1000, 8.0 * total / 200)
    line(f"bulk_{total}_pbs_calls_per_tenant", len(requests) / total, FLOOR_WRITES, 7)
    line(f"bulk_{total}_pbs_writes_per_tenant", len(writes) / total, FLOOR_WRITES)


def bench_list(count: int) -> None:
    """The tenant list stays as fast at 10,000 tenants as at a few hundred."""
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Role, User
    from tenants.models import Datastore, Tenant

    user = User.objects.create_user(username="bench-admin", password="x" * 20, role=Role.ADMIN)
    client = Client()
    client.force_login(user)
    store = Datastore.objects.select_related("host").first()
    urls = ["/tenants/", "/tenants/?q=acme-07", f"/tenants/?status=active&host={store.host_id}&page=3"]

    def measure() -> tuple[float, int]:
        times, queries = [], 0
        for _ in range(5):
            started = time.perf_counter()
            for url in urls:
                with CaptureQueriesContext(connection) as ctx:
                    response = client.get(url, secure=True)
                assert response.status_code == 200, response.status_code
                queries = max(queries, len(ctx.captured_queries))
            times.append((time.perf_counter() - started) * 1000 / len(urls))
        return statistics.median(times), queries

    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # DJANGO_DEBUG=0 asks staff for a second factor; the figure is the page, not the sign-in.
    with override_settings(STORAGES=storages, PORTAL_REQUIRE_STAFF_TOTP=False):
        small_ms, small_queries = measure()
        have = Tenant.objects.count()
        Tenant.objects.bulk_create(
            (
                Tenant(slug=f"acme-{i:05d}", name=f"Acme {i}", status="active", host=store.host,
                       datastore=store, namespace=f"clients/acme-{i:05d}", pbs_userid=f"acme-{i:05d}@pbs")
                for i in range(count - have)
            ),
            batch_size=2000,
        )  # fmt: skip
        big_ms, big_queries = measure()
    line(f"tenant_list_{count}_ms", big_ms, small_ms, 10)
    line("tenant_list_queries", big_queries, small_queries)


def main() -> int:
    quick = "--quick" in sys.argv
    with tempfile.TemporaryDirectory(prefix="bench-onboarding-") as tmp:
        setup_django(Path(tmp))
        hosts = [start_host("bench-a"), start_host("bench-b")]
        try:
            bench_single(hosts[0][0], hosts[0][1])
            bench_bulk(hosts, 40 if quick else 200)
            bench_list(10_000)
        finally:
            for sim, _host in hosts:
                sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
