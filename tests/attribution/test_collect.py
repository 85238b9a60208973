"""The daily attribution run against the simulator over HTTPS (pinned fingerprint, reader protocol).

Expected figures are computed here from the seeded digests with plain Python sets, not with
the engine: a chunk is keyed by its digest's first 8 bytes read big-endian.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import pytest

from attribution.models import AttributionRun, SnapshotIndex, TenantAttribution
from attribution.services.runs import attribution_collect
from core.crypto import encrypt_secret
from pbsclient.errors import PbsConnectionError
from pbssim.chunk_content import ArchiveSpec
from tenants.pbs import client_for_values, reader_for_host
from tests.conftest import sim_info

from .conftest import STORE, T0, Seeded, Snap, chunk

pytestmark = pytest.mark.django_db

DAY1, DAY2, DAY3 = dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)
OTHERS = sys.maxsize


def _owner(ns: str, tenants: dict[str, Any]) -> int:
    for tenant in tenants.values():
        if ns == tenant.namespace or ns.startswith(tenant.namespace + "/"):
            return tenant.pk
    return OTHERS


def expected(world: Seeded) -> tuple[dict[int, tuple[int, int, int]], int, int]:
    """{owner: (referenced, exclusive, share)}, distinct chunks, distinct bytes: by hand."""
    sizes: dict[int, int] = {}
    chunks_of: dict[int, set[int]] = {t.pk: set() for t in world.tenants.values()}
    for snap in world.snaps:
        owner = _owner(snap.ns, world.tenants)
        for digest, size in snap.chunks():
            key = int.from_bytes(digest[:8], "big")
            sizes[key] = size
            chunks_of.setdefault(owner, set()).add(key)
    figures = {}
    for owner, keys in chunks_of.items():
        referenced = sum(sizes[k] for k in keys)
        exclusive = sum(sizes[k] for k in keys if all(k not in other for o, other in chunks_of.items() if o != owner))
        share = 0
        for k in keys:
            holders = sorted(o for o, other in chunks_of.items() if k in other)
            share += sizes[k] // len(holders) + (1 if holders.index(owner) < sizes[k] % len(holders) else 0)
        figures[owner] = (referenced, exclusive, share)
    return figures, len(sizes), sum(sizes.values())


def _figures(run: AttributionRun) -> dict[int, tuple[int, int, int]]:
    rows = TenantAttribution.objects.filter(run=run)
    return {r.tenant_id: (r.referenced_bytes, r.exclusive_bytes, r.share_bytes) for r in rows}


def _check(run: AttributionRun, world: Seeded) -> None:
    want, distinct_chunks, distinct_bytes = expected(world)
    run.refresh_from_db()
    assert run.status == AttributionRun.Status.DONE, run.error
    assert run.method == AttributionRun.Method.EXACT
    assert (run.distinct_chunks, run.distinct_bytes) == (distinct_chunks, distinct_bytes)
    tenant_figures = {k: v for k, v in want.items() if k != OTHERS}
    assert _figures(run) == tenant_figures
    assert run.others_share_bytes == want.get(OTHERS, (0, 0, 0))[2]
    # The shares of the tenants and of the others add up exactly to the distinct bytes.
    assert sum(share for _, _, share in _figures(run).values()) + run.others_share_bytes == run.distinct_bytes


def test_seeded_tenants_get_exactly_the_expected_bytes(seeded: Seeded) -> None:
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1)
    _check(run, seeded)
    want, _, _ = expected(seeded)
    acme, beta = seeded.tenants["acme"].pk, seeded.tenants["beta"].pk
    # The figures differ the way real data makes them differ: shared template, shared chunks.
    assert want[acme][1] < want[acme][2] < want[acme][0]
    assert want[beta][1] < want[beta][2] < want[beta][0]
    assert run.snapshots_listed == run.snapshots_new == run.snapshots_read == len(seeded.snaps)
    # Physical share: the share scaled by the GC's disk bytes over the distinct bytes, with its time.
    row = TenantAttribution.objects.get(run=run, tenant_id=acme)
    disk = run.gc_disk_bytes
    assert disk == sim_info(seeded.sim).datastores[0].gc_disk_bytes
    assert row.physical_share_bytes == (want[acme][2] * disk * 2 + run.distinct_bytes) // (2 * run.distinct_bytes)


def test_each_new_snapshot_costs_one_session_its_manifest_and_its_indexes(seeded: Seeded) -> None:
    content = seeded.sim.content
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1)
    run.refresh_from_db()
    floor_bytes = 0
    for snap in seeded.snaps:
        stored = SnapshotIndex.objects.get(namespace=snap.ns, backup_id=snap.backup_id, backup_time=snap.backup_time)
        files = content.get(snap.ref).files
        wanted = ["index.json.blob", *[a.name for a in snap.archives]]
        assert [name for ref, name in content.downloads if ref == snap.ref] == wanted
        assert stored.requests == 1 + len(wanted)  # the session's upgrade, the manifest, each index
        assert stored.bytes_downloaded == sum(len(files[name]) for name in wanted)
        floor_bytes += stored.bytes_downloaded
    assert content.sessions_opened == len(seeded.snaps)
    assert run.bytes_downloaded == floor_bytes


def test_a_second_day_downloads_nothing_for_unchanged_snapshots(seeded: Seeded) -> None:
    attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1)
    content = seeded.sim.content
    sessions, downloads = content.sessions_opened, len(content.downloads)
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY2)
    run.refresh_from_db()
    assert (content.sessions_opened, len(content.downloads)) == (sessions, downloads)
    assert (run.snapshots_new, run.snapshots_read, run.bytes_downloaded) == (0, 0, 0)
    _check(run, seeded)


def test_a_new_snapshot_is_read_once_and_a_vanished_one_drops_out(seeded: Seeded) -> None:
    attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1)
    content = seeded.sim.content
    beta_ns = seeded.tenants["beta"].namespace
    archive = ArchiveSpec("drive-scsi0.img.didx", [chunk("beta-0", 333), chunk("beta-new", 12345)])
    new = seeded.add(Snap(beta_ns, "vm", "100", T0 + 2 * 86400, [archive]))
    gone = next(s for s in seeded.snaps if s.ns == "")
    seeded.remove(gone)
    before = len(content.downloads)
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY2)
    run.refresh_from_db()
    assert [name for _, name in content.downloads[before:]] == ["index.json.blob", "drive-scsi0.img.didx"]
    assert (run.snapshots_new, run.snapshots_read, run.snapshots_dropped) == (1, 1, 1)
    assert not SnapshotIndex.objects.filter(namespace="").exists()
    assert SnapshotIndex.objects.filter(backup_time=new.backup_time).exists()
    _check(run, seeded)
    assert run.others_share_bytes == 0


def test_an_interrupted_run_resumes_without_reading_again(seeded: Seeded) -> None:
    content = seeded.sim.content
    opened: list[int] = []

    def flaky_reader(host: Any, **snapshot: Any) -> Any:
        if len(opened) == 2:
            raise PbsConnectionError("connection reset", host=host.name)
        opened.append(snapshot["backup_time"])
        return reader_for_host(host, **snapshot)

    with pytest.raises(PbsConnectionError):
        attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1, reader_factory=flaky_reader)
    run = AttributionRun.objects.get(day=DAY1)
    assert run.status == AttributionRun.Status.FAILED
    assert "connection reset" in run.error
    assert (run.snapshots_new, run.snapshots_read) == (len(seeded.snaps), 2)
    assert SnapshotIndex.objects.count() == 2
    downloads_before = list(content.downloads)

    resumed = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1)
    assert resumed.pk == run.pk
    first_two = {ref for ref, _ in downloads_before}
    assert len(first_two) == 2
    assert not [ref for ref, _ in content.downloads[len(downloads_before):] if ref in first_two]
    assert content.sessions_opened == len(seeded.snaps)  # each snapshot read exactly once overall
    _check(resumed, seeded)


def _metering_token(seeded: Seeded, role: str) -> None:
    """What docs/pbs-setup.md has the administrator do, with ``role`` on the datastore."""
    info = sim_info(seeded.sim)
    with client_for_values(url=seeded.server.url, token_id=info.token_id, token_secret=info.token_secret,
                           fingerprint=seeded.server.fingerprint) as root:  # fmt: skip
        root.user_create(userid="metering@pbs", comment="metering")
        root.acl_update(path=f"/datastore/{STORE}", role=role, auth_id="metering@pbs")
        secret = root.token_create("metering@pbs", "usage").value
        root.acl_update(path=f"/datastore/{STORE}", role=role, auth_id="metering@pbs!usage")
    host = seeded.host
    host.metering_token_id, host.metering_secret_enc = "metering@pbs!usage", encrypt_secret(secret)
    host.save()


def test_the_documented_datastore_reader_grant_is_enough_for_exact_figures(seeded: Seeded) -> None:
    _metering_token(seeded, "DatastoreReader")
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1)
    _check(run, seeded)


def test_a_credential_without_datastore_read_keeps_the_estimate_and_says_why(seeded: Seeded) -> None:
    _metering_token(seeded, "DatastoreAudit")
    host = seeded.host
    run = attribution_collect(host_id=host.pk, datastore=STORE, day=DAY1)
    run.refresh_from_db()
    assert run.method == AttributionRun.Method.ESTIMATE
    assert run.status == AttributionRun.Status.DONE
    assert "Datastore.Read" in run.error
    assert "metering@pbs!usage" in run.error
    assert "no permissions on /datastore/store1" in run.error  # PBS's refusal, quoted
    assert not TenantAttribution.objects.filter(run=run).exists()
    assert seeded.sim.content.sessions_opened == 0


def test_a_run_left_running_on_an_earlier_day_is_marked_failed(seeded: Seeded) -> None:
    lost = AttributionRun.objects.create(host=seeded.host, datastore=STORE, day=DAY1)
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY2)
    lost.refresh_from_db()
    assert (lost.status, lost.error) == (AttributionRun.Status.FAILED, "never finished (worker lost)")
    assert run.status == AttributionRun.Status.DONE


@pytest.mark.postgres
def test_on_postgresql_the_stored_indexes_round_trip(seeded: Seeded) -> None:
    """BinaryField comes back as a memoryview there; the second day reads nothing and agrees."""
    attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY1)
    run = attribution_collect(host_id=seeded.host.pk, datastore=STORE, day=DAY2)
    assert run.bytes_downloaded == 0
    _check(run, seeded)
