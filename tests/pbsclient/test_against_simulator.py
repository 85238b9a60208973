"""The client against the PBS simulator: the portal's main flows end to end (in-process
transport), the async client, fault handling, and real HTTPS with a pinned fingerprint."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from pbsclient import AsyncPbsClient, PbsClient, RetryPolicy
from pbsclient.errors import (
    AlreadyExists,
    AuthenticationFailed,
    FingerprintMismatch,
    InvalidParameter,
    NotFound,
    PermissionDenied,
    ServerError,
)
from pbsclient.models import PruneJob

STORE = "store1"
BASE = "https://pbs.sim:8007"


@pytest.fixture
def sim() -> Any:
    from pbssim import Simulator

    simulator = Simulator()
    simulator.add_datastore(STORE, total_bytes=4 * 2**40, used_bytes=2**40)
    return simulator


@pytest.fixture
def admin(sim: Any) -> tuple[str, str]:
    tokenid, secret = sim.bootstrap_admin_token()
    return tokenid, secret


@pytest.fixture
def client(sim: Any, admin: tuple[str, str]) -> Iterator[PbsClient]:
    tokenid, secret = admin
    with PbsClient(
        base_url=BASE, token_id=tokenid, token_secret=secret, transport=sim.transport(),
        retry=RetryPolicy(max_attempts=1), host_label="sim",
    ) as c:  # fmt: skip
        yield c


def test_version_and_ping(client: PbsClient) -> None:
    version = client.version()
    assert version.version == "4.2"
    assert version.version_tuple[:2] == (4, 2)
    assert client.ping() is True


def test_user_lifecycle_create_check_delete(client: PbsClient) -> None:
    with pytest.raises(NotFound):
        client.user_get("acme@pbs")
    client.user_create(userid="acme@pbs", comment="Acme Ltd")
    with pytest.raises(AlreadyExists):
        client.user_create(userid="acme@pbs")
    user = client.user_get("acme@pbs")
    assert user.userid == "acme@pbs"
    assert user.comment == "Acme Ltd"
    assert user.enable is True
    client.user_update("acme@pbs", enable=False, delete=["comment"])
    updated = client.user_get("acme@pbs")
    assert updated.enable is False
    assert updated.comment is None
    assert "acme@pbs" in {u.userid for u in client.user_list()}
    client.user_delete("acme@pbs")
    with pytest.raises(NotFound):
        client.user_delete("acme@pbs")


def test_token_lifecycle_with_regenerate(client: PbsClient, sim: Any) -> None:
    client.user_create(userid="acme@pbs")
    created = client.token_create("acme@pbs", "backup", comment="backups")
    assert created.tokenid == "acme@pbs!backup"
    assert created.value
    with pytest.raises(AlreadyExists):
        client.token_create("acme@pbs", "backup")
    token = client.token_get("acme@pbs", "backup")
    assert token.comment == "backups"
    assert [t.tokenid for t in client.token_list("acme@pbs")] == ["acme@pbs!backup"]
    listed = {u.userid: u for u in client.user_list(include_tokens=True)}
    assert [t.tokenid for t in listed["acme@pbs"].tokens] == ["acme@pbs!backup"]

    new_secret = client.token_update("acme@pbs", "backup", regenerate=True)
    assert new_secret
    assert new_secret != created.value
    assert client.token_update("acme@pbs", "backup", enable=False) is None

    # The new secret authenticates (token enabled again), the old one does not.
    client.token_update("acme@pbs", "backup", enable=True)
    old = PbsClient(base_url=BASE, token_id=created.tokenid, token_secret=created.value,
                    transport=sim.transport(), retry=RetryPolicy.never())  # fmt: skip
    with pytest.raises(AuthenticationFailed):
        old.version()
    with PbsClient(base_url=BASE, token_id=created.tokenid, token_secret=new_secret,
                   transport=sim.transport(), retry=RetryPolicy.never()) as new:  # fmt: skip
        assert new.version().version == "4.2"

    client.token_delete("acme@pbs", "backup")
    with pytest.raises(NotFound):
        client.token_get("acme@pbs", "backup")
    with pytest.raises(NotFound):
        client.token_delete("acme@pbs", "backup")


def test_namespace_and_acl_flow(client: PbsClient) -> None:
    assert client.namespace_create(STORE, "clients") == "clients"
    assert client.namespace_create(STORE, "acme", parent="clients") == "clients/acme"
    assert client.namespace_create(STORE, "acme", parent="clients") == "clients/acme"  # idempotent on PBS
    listed = [ns.ns for ns in client.namespace_list(STORE, parent="clients", max_depth=1)]
    assert listed == ["clients", "clients/acme"]

    client.user_create(userid="acme@pbs")
    client.token_create("acme@pbs", "backup")
    path = f"/datastore/{STORE}/clients/acme"
    client.acl_update(path=path, role="DatastorePowerUser", auth_id="acme@pbs")
    client.acl_update(path=path, role="DatastoreReader", auth_id="acme@pbs")
    client.acl_update(path=path, role="DatastoreBackup", auth_id="acme@pbs!backup")
    client.acl_update(path=path, role="DatastoreBackup", auth_id="acme@pbs!backup")  # idempotent
    entries = {(e.ugid, e.roleid) for e in client.acl_list(path=path, exact=True)}
    assert entries == {
        ("acme@pbs", "DatastorePowerUser"),
        ("acme@pbs", "DatastoreReader"),
        ("acme@pbs!backup", "DatastoreBackup"),
    }
    token_perms = client.permissions_get(auth_id="acme@pbs!backup", path=path)
    assert token_perms[path].get("Datastore.Backup") is not None
    assert "Datastore.Modify" not in token_perms[path]

    client.acl_update(path=path, role="DatastoreBackup", auth_id="acme@pbs!backup", delete=True)
    assert ("acme@pbs!backup", "DatastoreBackup") not in {
        (e.ugid, e.roleid) for e in client.acl_list(path=path, exact=True)
    }
    with pytest.raises(NotFound):
        client.acl_update(path=path, role="DatastoreBackup", auth_id="ghost@pbs")

    removed = client.namespace_delete(STORE, "clients/acme", delete_groups=True)
    assert set(removed) <= {"removed_groups", "protected_snapshots", "removed_snapshots"}
    assert [ns.ns for ns in client.namespace_list(STORE, parent="clients", max_depth=1)] == ["clients"]


def test_namespace_with_missing_parent_is_not_found(client: PbsClient) -> None:
    with pytest.raises(NotFound):
        client.namespace_create(STORE, "acme", parent="nope")


def test_prune_job_lifecycle(client: PbsClient) -> None:
    job = PruneJob(id="t-acme", store=STORE, schedule="daily", ns="clients/acme", keep_daily=7, keep_last=3)
    with pytest.raises(NotFound):
        client.prune_job_get("t-acme")
    client.prune_job_create(job)
    with pytest.raises(AlreadyExists):
        client.prune_job_create(job)
    assert client.prune_job_get("t-acme") == job
    client.prune_job_update("t-acme", keep_daily=14, delete=["keep_last"])
    updated = client.prune_job_get("t-acme")
    assert updated.keep_daily == 14
    assert updated.keep_last is None
    assert [j.id for j in client.prune_job_list()] == ["t-acme"]
    client.prune_job_delete("t-acme")
    with pytest.raises(NotFound):
        client.prune_job_delete("t-acme")


def test_usage_reads(client: PbsClient, sim: Any) -> None:
    client.namespace_create(STORE, "clients")
    client.namespace_create(STORE, "acme", parent="clients")
    for i, verification in enumerate(["ok", "failed", None]):
        sim.seed_snapshot(
            store=STORE, ns="clients/acme", backup_type="vm", backup_id="100", backup_time=1_700_000_000 + i,
            size=(i + 1) * 1000, owner="acme@pbs!backup", verification=verification,
        )  # fmt: skip
    snapshots = client.snapshot_list(STORE, ns="clients/acme")
    assert sorted(s.size or 0 for s in snapshots) == [1000, 2000, 3000]
    assert {s.verification_state for s in snapshots} == {"ok", "failed", None}
    assert client.snapshot_list(STORE, ns="clients/acme", backup_type="ct") == []
    (group,) = client.group_list(STORE, ns="clients/acme")
    assert (group.backup_type, group.backup_id, group.backup_count) == ("vm", "100", 3)
    status = client.datastore_status(STORE, verbose=True)
    assert status.total == 4 * 2**40
    assert client.gc_status(STORE).store == STORE
    assert STORE in {u.store for u in client.datastore_usage()}
    assert STORE in {d.store for d in client.datastore_list()}
    with pytest.raises(NotFound):
        client.gc_status("nostore")


def test_permission_denied_for_an_unprivileged_token(client: PbsClient, sim: Any) -> None:
    client.user_create(userid="acme@pbs")
    created = client.token_create("acme@pbs", "backup")
    with PbsClient(base_url=BASE, token_id=created.tokenid, token_secret=created.value,
                   transport=sim.transport(), retry=RetryPolicy.never()) as weak:  # fmt: skip
        with pytest.raises(PermissionDenied):
            weak.gc_status(STORE)
        with pytest.raises(PermissionDenied):
            weak.prune_job_create(PruneJob(id="t-acme", store=STORE, schedule="daily", ns="clients/acme"))


def test_simulator_rejects_what_pbs_rejects_and_the_client_maps_it(client: PbsClient) -> None:
    from pbsclient import endpoints

    call = endpoints.Call(
        method="PUT", path="/access/acl", url="/access/acl", parse=lambda data: data,
        params={"path": "/", "role": "Audit", "userid": "acme@pbs"},
    )  # fmt: skip
    with pytest.raises(InvalidParameter) as info:
        client._run(call)
    assert "userid" in info.value.errors


def test_async_client_against_the_async_transport(sim: Any, admin: tuple[str, str]) -> None:
    tokenid, secret = admin
    for i in range(5):
        sim.seed_snapshot(store=STORE, ns=f"t{i}", backup_type="ct", backup_id="1", backup_time=1_700_000_000,
                          size=10, owner="x@pbs", verification="ok")  # fmt: skip

    async def main() -> list[int]:
        async with AsyncPbsClient(base_url=BASE, token_id=tokenid, token_secret=secret,
                                  transport=sim.async_transport(), max_connections=2) as c:  # fmt: skip
            listings = await asyncio.gather(*(c.snapshot_list(STORE, ns=f"t{i}") for i in range(5)))
            return [len(listing) for listing in listings]

    assert asyncio.run(main()) == [1] * 5


def test_injected_server_errors_are_retried_for_reads(sim: Any, admin: tuple[str, str]) -> None:
    from pbssim import FaultConfig

    tokenid, secret = admin
    sim.faults = FaultConfig(error_rate=0.5, seed=3)
    with PbsClient(base_url=BASE, token_id=tokenid, token_secret=secret, transport=sim.transport(),
                   retry=RetryPolicy(max_attempts=10, base_delay=0, max_delay=0)) as c:  # fmt: skip
        for _ in range(20):
            assert c.version().version == "4.2"
        assert c.stats.retries > 0
        assert c.stats.errors == 0
    sim.faults = FaultConfig(error_rate=1.0)
    with PbsClient(base_url=BASE, token_id=tokenid, token_secret=secret, transport=sim.transport(),
                   retry=RetryPolicy(max_attempts=3, base_delay=0, max_delay=0)) as c:  # fmt: skip
        with pytest.raises(ServerError):
            c.user_create(userid="acme@pbs")
        assert c.stats.requests == 1  # a create is never repeated after a 5xx


def test_https_server_with_pinned_fingerprint(sim: Any, admin: tuple[str, str]) -> None:
    from pbssim import SimServer

    tokenid, secret = admin
    server = SimServer(sim).start()
    try:
        with PbsClient(base_url=server.url, token_id=tokenid, token_secret=secret,
                       fingerprint=server.fingerprint.upper()) as c:  # fmt: skip
            assert c.version().version == "4.2"
            (cert,) = [info for info in c.certificate_info() if info.filename == "proxy.pem"]
            assert cert.fingerprint == server.fingerprint
        wrong = ":".join(["00"] * 32)
        pinned_wrong = PbsClient(base_url=server.url, token_id=tokenid, token_secret=secret, fingerprint=wrong,
                                 retry=RetryPolicy.never())  # fmt: skip
        with pytest.raises(FingerprintMismatch) as info:
            pinned_wrong.version()
        pinned_wrong.close()
        assert info.value.presented == server.fingerprint
    finally:
        server.stop()
