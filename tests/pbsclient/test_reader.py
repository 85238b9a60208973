"""Reader sessions against the simulator over real HTTPS with the pinned fingerprint."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from pbsclient.errors import FingerprintMismatch, NotFound, PbsHttpError, PermissionDenied
from pbsclient.reader import ReaderSession, open_reader
from pbssim.chunk_content import ArchiveSpec, ContentStore, SnapshotRef
from pbssim.chunk_seed import fill_from_state, seeded_digest
from pbssim.server import SimServer
from pbssim.simulator import Simulator

MIB = 2**20
TIME = 1_700_000_000
WRONG_PIN = ":".join(["ab"] * 32)


def _token(sim: Simulator, admin: tuple[str, str], auth_id: str, grants: dict[str, str]) -> str:
    """Create ``auth_id`` (user!token) with these ACL roles for user and token; returns the secret."""
    api = httpx.Client(
        transport=sim.transport(),
        base_url="https://pbs.test:8007/api2/json",
        headers={"Authorization": f"PBSAPIToken={admin[0]}:{admin[1]}"},
    )
    userid, _, name = auth_id.partition("!")
    api.post("/access/users", json={"userid": userid}).raise_for_status()
    secret = api.post(f"/access/users/{userid}/token/{name}", json={}).json()["data"]["value"]
    for path, role in grants.items():
        for who in (userid, auth_id):
            api.put("/access/acl", json={"path": path, "auth-id": who, "role": role}).raise_for_status()
    return str(secret)


@pytest.fixture
def served(
    pbs_sim: Simulator, pbs_https_factory: Callable[..., SimServer]
) -> tuple[SimServer, list[tuple[bytes, int]]]:
    """store1/ns a: vm/100 owned by alice@pbs!t1, with a 3-chunk image (one chunk shared with ns b)."""
    content = ContentStore()
    chunks = [(seeded_digest(9, n), 4 * MIB) for n in range(2)] + [(seeded_digest(9, "tail"), 12345)]
    content.put_snapshot(
        SnapshotRef("store1", "a", "vm", "100", TIME),
        owner="alice@pbs!t1",
        archives=[ArchiveSpec("drive-scsi0.img.fidx", chunks), ArchiveSpec("root.pxar.didx", chunks[:1])],
    )
    return pbs_https_factory(pbs_sim, content=content), chunks


def _open(server: SimServer, token_id: str, secret: str, **kwargs: object) -> ReaderSession:
    params = {"store": "store1", "ns": "a", "backup_type": "vm", "backup_id": "100", "backup_time": TIME}
    params.update(kwargs)
    params.setdefault("fingerprint", server.fingerprint)
    return open_reader(base_url=server.url, token_id=token_id, token_secret=secret, **params)  # type: ignore[arg-type]


def test_a_reader_downloads_manifest_and_indexes_over_pinned_https(
    pbs_sim: Simulator, pbs_admin_token: tuple[str, str], served: tuple[SimServer, list[tuple[bytes, int]]]
) -> None:
    server, chunks = served
    secret = _token(pbs_sim, pbs_admin_token, "alice@pbs!t1", {"/datastore/store1/a": "DatastoreReader"})
    with _open(server, "alice@pbs!t1", secret) as session:
        manifest = session.manifest()
        assert [f.filename for f in manifest.index_files()] == ["drive-scsi0.img.fidx", "root.pxar.didx"]
        fidx = session.index("drive-scsi0.img.fidx")
        didx = session.index("root.pxar.didx")
        assert session.requests == 3
    assert fidx.chunks() == chunks
    assert didx.chunks() == chunks[:1]
    assert manifest.file("drive-scsi0.img.fidx").csum == fidx.index_csum
    assert server.content.sessions_opened == 1


def test_many_files_of_several_megabytes_pass_flow_control(
    pbs_sim: Simulator, pbs_admin_token: tuple[str, str], pbs_https_factory: Callable[..., SimServer]
) -> None:
    # A 64 GiB image at 4 MiB chunks: a 512 KiB index, more than HTTP/2's default 64 KiB window.
    content = ContentStore()
    big = [(seeded_digest(5, n), 4 * MIB) for n in range(16384)]
    content.put_snapshot(SnapshotRef("store1", "", "vm", "1", TIME), owner="root@pam",
                         archives=[ArchiveSpec("drive-scsi0.img.fidx", big)])  # fmt: skip
    server = pbs_https_factory(pbs_sim, content=content)
    with _open(server, *pbs_admin_token, ns="", backup_id="1") as session:
        for _ in range(3):
            assert len(session.index("drive-scsi0.img.fidx")) == 16384
        assert session.bytes_downloaded == 3 * (4096 + 16384 * 32)


def test_the_pin_is_checked_before_the_token_is_sent(
    pbs_admin_token: tuple[str, str], served: tuple[SimServer, list[tuple[bytes, int]]]
) -> None:
    server, _ = served
    with pytest.raises(FingerprintMismatch):
        _open(server, *pbs_admin_token, fingerprint=WRONG_PIN)
    assert server.content.sessions_opened == 0


def test_pbs_refusals_map_onto_the_error_tree(
    pbs_sim: Simulator, pbs_admin_token: tuple[str, str], served: tuple[SimServer, list[tuple[bytes, int]]]
) -> None:
    server, _ = served
    secret = _token(pbs_sim, pbs_admin_token, "eve@pbs!t", {"/datastore/store1/b": "DatastoreReader"})
    with pytest.raises(PermissionDenied, match="no permissions on /datastore/store1/a"):
        _open(server, "eve@pbs!t", secret)
    backup_only = _token(pbs_sim, pbs_admin_token, "mallory@pbs!t", {"/datastore/store1": "DatastoreBackup"})
    with pytest.raises(PermissionDenied, match="backup owner check failed!"):
        _open(server, "mallory@pbs!t", backup_only)
    with pytest.raises(NotFound, match=r"snapshot vm/100/2023-11-14T22:13:21Z does not exist\."):
        _open(server, *pbs_admin_token, backup_time=TIME + 1)
    with pytest.raises(PbsHttpError) as caught:
        _open(server, pbs_admin_token[0], "wrong-secret")
    assert caught.value.status == 401


def test_a_backup_only_owner_may_read_its_own_snapshot(
    pbs_sim: Simulator, pbs_admin_token: tuple[str, str], served: tuple[SimServer, list[tuple[bytes, int]]]
) -> None:
    server, chunks = served
    secret = _token(pbs_sim, pbs_admin_token, "alice@pbs!t1", {"/datastore/store1": "DatastoreBackup"})
    with _open(server, "alice@pbs!t1", secret) as session:
        assert session.index("drive-scsi0.img.fidx").chunks() == chunks


def test_a_missing_file_is_a_404_inside_the_session(
    pbs_admin_token: tuple[str, str], served: tuple[SimServer, list[tuple[bytes, int]]]
) -> None:
    server, _ = served
    with _open(server, *pbs_admin_token) as session:
        with pytest.raises(NotFound, match=r"client\.log\.blob\" failed - not found"):
            session.download("client.log.blob")
        assert session.manifest().backup_id == "100"  # the session survives the error


def test_the_simulators_seeded_snapshots_are_readable(
    pbs_sim: Simulator, pbs_admin_token: tuple[str, str], pbs_https: SimServer
) -> None:
    pbs_sim.seed_snapshot(store="store2", ns="t1", backup_type="ct", backup_id="7", backup_time=TIME, size=50 * MIB)
    fill_from_state(pbs_https.content, pbs_sim.state, seed=1)
    with _open(pbs_https, *pbs_admin_token, store="store2", ns="t1", backup_type="ct", backup_id="7") as session:
        manifest = session.manifest()
        total = sum(len(session.index(f.filename)) for f in manifest.index_files())
    assert total > 0
