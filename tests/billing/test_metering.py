"""Metering against the PBS simulator: nested namespaces, failing hosts, gaps, overwrites.

Expected figures are computed here, from the list of snapshots the test seeded, without
any portal code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from django.core.management import call_command

from billing.models import MeteringGap, MeteringHostResult, MeteringRun, UsageSample
from billing.services.metering import metering_collect_chunk
from billing.signals import usage_sampled
from pbssim import Simulator
from tenants.models import Datastore, PbsHost, Tenant
from tenants.pbs import install_transport, uninstall_transport
from tests.factories import make_datastore, make_host, make_tenant

pytestmark = pytest.mark.django_db

DAY = dt.date(2025, 1, 15)
T0 = 1_735_689_600  # 2025-01-01 00:00 UTC
GC_INDEX = 8 * 2**40
GC_DISK = 2 * 2**40


@dataclass(frozen=True)
class Seeded:
    ns: str
    backup_type: str
    backup_id: str
    backup_time: int
    size: int | None


# Tenant "acme" lives in clients/acme, with namespaces three levels below it. "acme2" and
# "other" are neighbours whose snapshots must never be counted for acme (acme2 shares the
# prefix "clients/acme").
SNAPSHOTS = [
    Seeded("clients/acme", "vm", "100", T0 + 1000, 10 * 2**30),
    Seeded("clients/acme", "vm", "100", T0 + 90000, 12 * 2**30),
    Seeded("clients/acme", "ct", "200", T0 + 5000, 3 * 2**30),
    Seeded("clients/acme/prod", "vm", "100", T0 + 2000, 40 * 2**30),  # same id, other ns: other group
    Seeded("clients/acme/prod", "vm", "100", T0 + 3000, 41 * 2**30),
    Seeded("clients/acme/prod/db", "host", "pg1", T0 + 100, 7 * 2**30),
    Seeded("clients/acme/prod/db", "host", "pg1", T0 + 200_000, None),  # still running: no size
    Seeded("clients/acme/prod/db/wal", "host", "pg1-wal", T0 + 300, 5 * 2**20),
    Seeded("clients/acme2", "vm", "900", T0 + 10, 999 * 2**30),
    Seeded("clients/other/x", "vm", "901", T0 + 10, 555 * 2**30),
]


def expected_for(ns: str) -> dict[str, object]:
    """The figures for a tenant namespace, straight from the seeded list."""
    mine = [s for s in SNAPSHOTS if s.ns == ns or s.ns.startswith(ns + "/")]
    groups: dict[tuple[str, str, str], list[Seeded]] = {}
    for s in mine:
        groups.setdefault((s.ns, s.backup_type, s.backup_id), []).append(s)
    latest = 0
    for snaps in groups.values():
        sized = [s for s in snaps if s.size is not None]
        if sized:
            latest += max(sized, key=lambda s: s.backup_time).size or 0
    logical = sum(s.size or 0 for s in mine)
    return {
        "logical_bytes": logical,
        "latest_bytes": latest,
        "snapshot_count": len(mine),
        "group_count": len(groups),
        "unsized_snapshot_count": sum(1 for s in mine if s.size is None),
        "newest_backup_at": dt.datetime.fromtimestamp(max(s.backup_time for s in mine), tz=dt.UTC),
        "oldest_backup_at": dt.datetime.fromtimestamp(min(s.backup_time for s in mine), tz=dt.UTC),
        "physical_estimate_bytes": (logical * GC_DISK * 2 + GC_INDEX) // (2 * GC_INDEX),
    }


def _simulated_host(name: str, *, seed: bool = True) -> tuple[Simulator, PbsHost, Datastore]:
    sim = Simulator()
    token_id, secret = sim.bootstrap_admin_token()
    sim.add_datastore("store1", gc_index_data_bytes=GC_INDEX, gc_disk_bytes=GC_DISK)
    if seed:
        for s in SNAPSHOTS:
            sim.seed_snapshot(
                store="store1",
                ns=s.ns,
                backup_type=s.backup_type,
                backup_id=s.backup_id,
                backup_time=s.backup_time,
                size=s.size,
            )
    host = make_host(name=name, url=f"https://{name}.test:8007", token_id=token_id, token_secret=secret)
    return sim, host, make_datastore(host=host, name="store1")


@pytest.fixture
def routes() -> Iterator[list[str]]:
    """Hosts routed to an in-process transport; uninstalled after the test."""
    urls: list[str] = []
    yield urls
    for url in urls:
        uninstall_transport(url)


def _route(routes: list[str], host: PbsHost, transport: httpx.AsyncBaseTransport) -> None:
    install_transport(host.url, async_transport=transport)
    routes.append(host.url)


@pytest.fixture
def fast_retries(settings) -> None:
    settings.PORTAL_METERING_ATTEMPTS = 2
    settings.PORTAL_METERING_RETRY_DELAY_SECONDS = 0.0


def test_a_tenant_is_measured_over_its_whole_namespace_tree(routes, fast_retries) -> None:
    sim, host, store = _simulated_host("pbs-a")
    _route(routes, host, sim.async_transport())
    acme = make_tenant(slug="acme", datastore=store)
    other = make_tenant(slug="other", datastore=store)
    empty = make_tenant(slug="empty", datastore=store)
    sim.seed_snapshot(store="store1", ns="clients/empty", backup_type="vm", backup_id="1", backup_time=T0, size=0)

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    sample = UsageSample.objects.get(tenant=acme, day=DAY)
    for field, value in expected_for("clients/acme").items():
        assert getattr(sample, field) == value, field
    assert sample.namespace_count == 4
    assert (sample.gc_index_data_bytes, sample.gc_disk_bytes, sample.gc_source) == (GC_INDEX, GC_DISK, "live")
    assert (sample.host_name, sample.datastore, sample.namespace) == ("pbs-a", "store1", "clients/acme")
    assert UsageSample.objects.get(tenant=other).logical_bytes == 555 * 2**30
    assert UsageSample.objects.get(tenant=empty).logical_bytes == 0
    run = MeteringRun.objects.get()
    assert run.status == MeteringRun.Status.OK
    assert (run.tenants_sampled, run.tenants_gap, run.hosts_failed) == (3, 0, 0)


def test_collecting_a_day_again_overwrites_its_samples(routes, fast_retries) -> None:
    sim, host, store = _simulated_host("pbs-a")
    _route(routes, host, sim.async_transport())
    acme = make_tenant(slug="acme", datastore=store)
    call_command("billing", "collect", "--as-of", DAY.isoformat())
    sim.seed_snapshot(
        store="store1", ns="clients/acme/new", backup_type="ct", backup_id="7", backup_time=T0 + 7, size=2**30
    )

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    assert UsageSample.objects.filter(tenant=acme, day=DAY).count() == 1
    sample = UsageSample.objects.get(tenant=acme, day=DAY)
    assert sample.logical_bytes == expected_for("clients/acme")["logical_bytes"] + 2**30
    assert sample.run == MeteringRun.objects.order_by("-pk").first()


class FailingTransport(httpx.AsyncBaseTransport):
    """Answers the first ``ok_requests`` requests from the simulator, then refuses connections
    (a host that goes down in the middle of a collection)."""

    def __init__(self, sim: Simulator, ok_requests: int) -> None:
        self.inner = sim.async_transport()
        self.left = ok_requests

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left <= 0:
            raise httpx.ConnectError("connection refused", request=request)
        self.left -= 1
        return await self.inner.handle_async_request(request)


def test_a_host_failing_during_collection_leaves_gaps_for_its_tenants_only(routes, fast_retries) -> None:
    sim_a, host_a, store_a = _simulated_host("pbs-a")
    sim_b, host_b, store_b = _simulated_host("pbs-b")
    _route(routes, host_a, sim_a.async_transport())
    _route(routes, host_b, FailingTransport(sim_b, ok_requests=3))
    on_a = [make_tenant(slug=s, datastore=store_a) for s in ("acme", "other")]
    on_b = [make_tenant(slug=s, datastore=store_b, namespace_parent="clients") for s in ("acme2", "b2", "b3")]

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    assert set(UsageSample.objects.values_list("tenant__slug", flat=True)) == {"acme", "other"}
    gaps = {g.tenant.slug: g for g in MeteringGap.objects.select_related("tenant")}
    assert set(gaps) == {t.slug for t in on_b}
    assert all("unreachable" in g.reason or "refused" in g.reason for g in gaps.values())
    result_b = MeteringHostResult.objects.get(host=host_b)
    assert result_b.status == MeteringHostResult.Status.FAILED
    assert result_b.attempts == 1  # one task execution ...
    assert "refused" in result_b.error or "unreachable" in result_b.error
    assert MeteringHostResult.objects.get(host=host_a).status == MeteringHostResult.Status.OK
    run = MeteringRun.objects.get()
    assert run.status == MeteringRun.Status.PARTIAL
    assert (run.tenants_sampled, run.tenants_gap, run.hosts_failed) == (len(on_a), len(on_b), 1)


def test_a_host_that_recovers_on_the_retry_is_fully_sampled(routes, settings) -> None:
    settings.PORTAL_METERING_ATTEMPTS = 3
    settings.PORTAL_METERING_RETRY_DELAY_SECONDS = 0.0
    sim, host, store = _simulated_host("pbs-a")

    class FlakyOnce(httpx.AsyncBaseTransport):
        """Refuses connections during the first attempt only (the first 4 requests)."""

        def __init__(self) -> None:
            self.inner = sim.async_transport()
            self.calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.calls += 1
            if self.calls <= 4:
                raise httpx.ConnectError("connection refused", request=request)
            return await self.inner.handle_async_request(request)

    _route(routes, host, FlakyOnce())
    acme = make_tenant(slug="acme", datastore=store)

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    assert UsageSample.objects.get(tenant=acme).logical_bytes == expected_for("clients/acme")["logical_bytes"]
    assert not MeteringGap.objects.exists()
    assert MeteringRun.objects.get().status == MeteringRun.Status.OK


def test_a_failed_collection_keeps_the_days_earlier_sample(routes, fast_retries) -> None:
    sim, host, store = _simulated_host("pbs-a")
    _route(routes, host, sim.async_transport())
    acme = make_tenant(slug="acme", datastore=store)
    call_command("billing", "collect", "--as-of", DAY.isoformat())
    before = UsageSample.objects.get(tenant=acme)
    _route(routes, host, FailingTransport(sim, ok_requests=0))

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    after = UsageSample.objects.get(tenant=acme)
    assert (after.pk, after.logical_bytes, after.taken_at) == (before.pk, before.logical_bytes, before.taken_at)
    assert not MeteringGap.objects.exists()  # the day has a (real) sample
    assert MeteringRun.objects.order_by("-pk").first().hosts_failed == 1


def test_a_missing_tenant_namespace_is_a_gap_with_the_reason(routes, fast_retries) -> None:
    sim, host, store = _simulated_host("pbs-a", seed=False)
    _route(routes, host, sim.async_transport())
    ghost = make_tenant(slug="ghost", datastore=store)

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    assert not UsageSample.objects.exists()
    gap = MeteringGap.objects.get(tenant=ghost)
    assert "namespace" in gap.reason.lower()


def test_only_metered_tenants_are_measured(routes, fast_retries) -> None:
    sim, host, store = _simulated_host("pbs-a")
    _route(routes, host, sim.async_transport())
    make_tenant(slug="acme", datastore=store, status=Tenant.Status.SUSPENDED)
    make_tenant(slug="other", datastore=store, status=Tenant.Status.OFFBOARDED)
    make_tenant(slug="pending", status=Tenant.Status.PENDING, provisioned=False)

    call_command("billing", "collect", "--as-of", DAY.isoformat())

    assert list(UsageSample.objects.values_list("tenant__slug", flat=True)) == ["acme"]


def test_each_stored_sample_is_announced_after_commit(routes, fast_retries, django_capture_on_commit_callbacks):
    sim, host, store = _simulated_host("pbs-a")
    _route(routes, host, sim.async_transport())
    acme = make_tenant(slug="acme", datastore=store)
    heard: list[tuple[int, int]] = []

    def receiver(sender, tenant_id, sample_id, **kwargs):
        heard.append((tenant_id, sample_id))

    usage_sampled.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            call_command("billing", "collect", "--as-of", DAY.isoformat())
        assert heard == []  # nothing before the commit
        for callback in callbacks:
            callback()
    finally:
        usage_sampled.disconnect(receiver)
    assert heard == [(acme.pk, UsageSample.objects.get(tenant=acme).pk)]


def test_tasks_fan_out_per_host_chunk(routes, settings, django_capture_on_commit_callbacks) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PORTAL_METERING_CHUNK_SIZE = 2
    settings.PORTAL_METERING_RETRY_DELAY_SECONDS = 0.0
    sim_a, host_a, store_a = _simulated_host("pbs-a")
    sim_b, host_b, store_b = _simulated_host("pbs-b")
    _route(routes, host_a, sim_a.async_transport())
    _route(routes, host_b, sim_b.async_transport())
    for slug in ("acme", "other", "t3", "t4", "t5"):
        make_tenant(slug=slug, datastore=store_a)
        if slug.startswith("t"):
            sim_a.seed_snapshot(
                store="store1", ns=f"clients/{slug}", backup_type="vm", backup_id="1", backup_time=T0, size=1
            )
    make_tenant(slug="acme2", datastore=store_b)
    from billing.tasks import metering_collect_all

    with django_capture_on_commit_callbacks(execute=True):
        metering_collect_all.delay(DAY.isoformat())

    run = MeteringRun.objects.get()
    chunks = list(run.host_results.order_by("host__name", "first_tenant_id").values_list("host__name", "tenants"))
    assert chunks == [("pbs-a", 2), ("pbs-a", 2), ("pbs-a", 1), ("pbs-b", 1)]
    assert run.status == MeteringRun.Status.OK
    assert UsageSample.objects.filter(day=DAY).count() == 6
    # A chunk delivered twice is left alone the second time.
    first = run.host_results.first()
    assert metering_collect_chunk(run_id=run.pk, host_id=first.host_id, tenant_ids=first.tenant_ids) is None


def test_a_finished_run_is_logged_under_the_documented_logger(routes, fast_retries, caplog) -> None:
    """docs/operations.md shows the line as ``INFO billing.services metering run ... finished``;
    operators filter on that logger name, so splitting the services must not rename it."""
    sim, host, store = _simulated_host("pbs-a")
    _route(routes, host, sim.async_transport())
    make_tenant(slug="acme", datastore=store)

    with caplog.at_level("INFO", logger="billing"):
        call_command("billing", "collect", "--as-of", DAY.isoformat())

    finished = [r for r in caplog.records if "finished" in r.getMessage() and "metering run" in r.getMessage()]
    assert [r.name for r in finished] == ["billing.services"]
