"""The simulator's own seeded content (make run's): attribution over HTTPS agrees with the
chunk lists the simulator built, and the content follows the simulator's snapshots."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import pytest

from attribution.models import AttributionRun, SnapshotIndex, TenantAttribution
from attribution.services.runs import attribution_collect
from pbsclient.errors import PbsHttpError
from pbssim.chunk_content import SnapshotRef
from tenants.pbs import client_for_values, reader_for_host
from tests.conftest import sim_info
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db

T0 = 1_760_000_000
MIB = 2**20
OTHERS = sys.maxsize


@pytest.fixture
def world(pbs_sim: Any, pbs_https_factory: Any, pbs_host: Any) -> dict[str, Any]:
    """acme and globex back up the same template VM (vm/100) for three days; globex has a
    container of its own, the root namespace an unrelated host backup."""
    pbs_sim.enable_content(seed=5)
    server = pbs_https_factory(pbs_sim)
    host = pbs_host(server)
    ds = host.datastores.get(name="store1")
    tenants = {slug: make_tenant(slug=slug, datastore=ds) for slug in ("acme", "globex")}
    for tenant in tenants.values():
        for day in range(3):
            pbs_sim.seed_snapshot(store="store1", ns=tenant.namespace, backup_type="vm", backup_id="100",
                                  backup_time=T0 + day * 86400, size=48 * MIB)  # fmt: skip
    pbs_sim.seed_snapshot(store="store1", ns=tenants["globex"].namespace, backup_type="ct", backup_id="201",
                          backup_time=T0, size=9 * MIB)  # fmt: skip
    pbs_sim.seed_snapshot(store="store1", ns="", backup_type="host", backup_id="nas", backup_time=T0, size=5 * MIB)
    return {"sim": pbs_sim, "server": server, "host": host, "tenants": tenants}


def _expected(sim: Any, tenants: dict[str, Any]) -> dict[int, tuple[int, int, int]]:
    """Figures from the simulator's chunk lists, by hand (sets and dicts)."""
    sizes: dict[int, int] = {}
    owned: dict[int, set[int]] = {t.pk: set() for t in tenants.values()}
    for ref in sim.content.refs():
        owner = next((t.pk for t in tenants.values() if ref.ns.startswith(t.namespace)), OTHERS)
        for digest, size in sim.content.get(ref).chunk_refs():
            key = int.from_bytes(digest[:8], "big")
            sizes[key] = size
            owned.setdefault(owner, set()).add(key)
    result = {}
    for owner, keys in owned.items():
        holders = {k: sorted(o for o, ks in owned.items() if k in ks) for k in keys}
        result[owner] = (
            sum(sizes[k] for k in keys),
            sum(sizes[k] for k in keys if len(holders[k]) == 1),
            sum(sizes[k] // len(h) + (h.index(owner) < sizes[k] % len(h)) for k, h in holders.items()),
        )
    return result


def test_the_seeded_template_is_shared_across_tenants_and_the_figures_match(world: dict[str, Any]) -> None:
    run = attribution_collect(host_id=world["host"].pk, datastore="store1", day=dt.date(2026, 5, 1))
    run.refresh_from_db()
    assert run.status == AttributionRun.Status.DONE, run.error
    want = _expected(world["sim"], world["tenants"])
    rows = {r.tenant_id: (r.referenced_bytes, r.exclusive_bytes, r.share_bytes)
            for r in TenantAttribution.objects.filter(run=run)}  # fmt: skip
    assert rows == {k: v for k, v in want.items() if k != OTHERS}
    assert run.others_share_bytes == want[OTHERS][2]
    assert sum(v[2] for v in want.values()) == run.distinct_bytes
    acme, globex = (world["tenants"][s].pk for s in ("acme", "globex"))
    # The shared template: neither tenant holds all it references alone.
    assert rows[acme][1] < rows[acme][2] < rows[acme][0]
    assert rows[globex][1] < rows[globex][2] < rows[globex][0]
    # Incremental snapshots: three days of a 48 MiB VM reference far less than 3 x 48 MiB.
    logical = sum(i.logical_bytes for i in SnapshotIndex.objects.filter(namespace=world["tenants"]["acme"].namespace))
    assert 0.99 * 3 * 48 * MIB < logical <= 3 * 48 * MIB  # the archives (the config blobs are not chunked)
    assert rows[acme][0] < 0.5 * logical


def test_content_follows_the_snapshots_a_namespace_deletion_removes(world: dict[str, Any]) -> None:
    sim, server, host = world["sim"], world["server"], world["host"]
    attribution_collect(host_id=host.pk, datastore="store1", day=dt.date(2026, 5, 1))
    globex = world["tenants"]["globex"]
    info = sim_info(sim)
    with client_for_values(url=server.url, token_id=info.token_id, token_secret=info.token_secret,
                           fingerprint=server.fingerprint) as client:  # fmt: skip
        client.namespace_delete("store1", globex.namespace, delete_groups=True)
    ref = SnapshotRef("store1", globex.namespace, "vm", "100", T0)
    with pytest.raises(PbsHttpError, match="does not exist"):
        reader_for_host(host, store="store1", ns=ref.ns, backup_type="vm", backup_id="100", backup_time=T0)
    assert ref not in sim.content.refs()

    run = attribution_collect(host_id=host.pk, datastore="store1", day=dt.date(2026, 5, 2))
    run.refresh_from_db()
    assert run.snapshots_dropped == 4
    row = TenantAttribution.objects.get(run=run, tenant=globex)
    assert (row.referenced_bytes, row.exclusive_bytes, row.share_bytes) == (0, 0, 0)
    acme = TenantAttribution.objects.get(run=run, tenant=world["tenants"]["acme"])
    assert acme.exclusive_bytes == acme.share_bytes == acme.referenced_bytes  # nobody shares its template now


def test_in_process_reader_sessions_follow_new_snapshots_and_check_privileges(pbs_sim: Any) -> None:
    """``Simulator.open_reader``: PBS's checks in-process; a snapshot seeded after a session is readable."""
    from pbssim.chunk_content import ReaderError

    pbs_sim.enable_content(seed=1)
    pbs_sim.seed_snapshot(store="store1", ns="a", backup_type="vm", backup_id="1", backup_time=T0, size=MIB,
                          owner="alice@pbs!backup")  # fmt: skip
    headers = {"upgrade": "proxmox-backup-reader-protocol-v1"}
    query = f"store=store1&ns=a&backup-type=vm&backup-id=1&backup-time={T0}"
    session = pbs_sim.open_reader("root@pam", query, headers)
    status, _, body = session.handle("GET", "/download", "file-name=index.json.blob")
    assert status == 200
    assert body == pbs_sim.content.get(SnapshotRef("store1", "a", "vm", "1", T0)).files["index.json.blob"]

    pbs_sim.seed_snapshot(store="store1", ns="a", backup_type="vm", backup_id="1", backup_time=T0 + 1, size=MIB)
    later = pbs_sim.open_reader("root@pam", query.replace(str(T0), str(T0 + 1)), headers)
    assert later.handle("GET", "/download", "file-name=index.json.blob")[0] == 200
    with pytest.raises(ReaderError, match="no permissions on /datastore/store1/a"):
        pbs_sim.open_reader("nobody@pbs", query, headers)
