"""The simulator's snapshot contents and the reader protocol's checks, in-process (no HTTPS)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from pbsclient import backup_format as parse
from pbssim.chunk_content import (
    READER_PROTOCOL,
    ArchiveSpec,
    ContentStore,
    ReaderError,
    SnapshotRef,
)
from pbssim.chunk_seed import fill_from_state, seeded_digest
from pbssim.simulator import Simulator

MIB = 2**20
TIME = 1_700_000_000  # 2023-11-14T22:13:20Z
UPGRADE = {"upgrade": READER_PROTOCOL}


def _query(ns: str = "a", backup_id: str = "100", backup_time: int = TIME, store: str = "store1") -> str:
    return f"store={store}&ns={ns}&backup-type=vm&backup-id={backup_id}&backup-time={backup_time}"


@pytest.fixture
def grant(pbs_sim: Simulator, pbs_admin_token: tuple[str, str]) -> Callable[[str, str, str], None]:
    """``grant(auth_id, path, role)``: create the user/token if needed and put the ACL entry."""
    token_id, secret = pbs_admin_token
    api = httpx.Client(
        transport=pbs_sim.transport(),
        base_url="https://pbs.test:8007/api2/json",
        headers={"Authorization": f"PBSAPIToken={token_id}:{secret}"},
    )

    def grant(auth_id: str, path: str, role: str) -> None:
        userid, _, token = auth_id.partition("!")
        api.post("/access/users", json={"userid": userid})
        if token:
            api.post(f"/access/users/{userid}/token/{token}", json={})
            api.put("/access/acl", json={"path": path, "auth-id": userid, "role": role}).raise_for_status()
        api.put("/access/acl", json={"path": path, "auth-id": auth_id, "role": role}).raise_for_status()

    return grant


@pytest.fixture
def content() -> ContentStore:
    store = ContentStore()
    shared = [(seeded_digest(1, "template", n), 4 * MIB) for n in range(3)]
    store.put_snapshot(
        SnapshotRef("store1", "a", "vm", "100", TIME),
        owner="alice@pbs!t1",
        archives=[
            ArchiveSpec("drive-scsi0.img.fidx", [*shared, (seeded_digest(1, "a", 0), MIB + 5)]),
            ArchiveSpec("root.pxar.didx", [(seeded_digest(1, "a", 1), 1000), (seeded_digest(1, "a", 2), 2000)]),
        ],
        blobs={"qemu-server.conf.blob": b"conf-blob-bytes"},
    )
    store.put_snapshot(
        SnapshotRef("store1", "b", "vm", "200", TIME),
        owner="bob@pbs",
        archives=[ArchiveSpec("drive-scsi0.img.fidx", shared)],
    )
    return store


def test_a_reader_downloads_the_manifest_and_indexes_it_lists(
    pbs_sim: Simulator, content: ContentStore, grant: Callable[[str, str, str], None]
) -> None:
    grant("alice@pbs!t1", "/datastore/store1/a", "DatastoreReader")
    session = content.open_reader(pbs_sim.state, "alice@pbs!t1", _query(), UPGRADE)
    status, headers, body = session.handle("GET", "/download", "file-name=index.json.blob")
    assert (status, headers["content-type"]) == (200, "application/octet-stream")
    manifest = parse.parse_manifest(body)
    assert (manifest.backup_type, manifest.backup_id, manifest.backup_time) == ("vm", "100", TIME)
    assert [f.filename for f in manifest.files] == ["qemu-server.conf.blob", "drive-scsi0.img.fidx", "root.pxar.didx"]
    fidx = parse.parse_index("drive-scsi0.img.fidx", session.download("drive-scsi0.img.fidx"))
    assert fidx.chunks() == [*[(seeded_digest(1, "template", n), 4 * MIB) for n in range(3)],
                             (seeded_digest(1, "a", 0), MIB + 5)]  # fmt: skip
    entry = manifest.file("drive-scsi0.img.fidx")
    assert (entry.size, entry.csum) == (13 * MIB + 5, fidx.index_csum)
    didx = parse.parse_index("root.pxar.didx", session.download("root.pxar.didx"))
    assert didx.sizes.tolist() == [1000, 2000]
    assert manifest.file("qemu-server.conf.blob").size == len(b"conf-blob-bytes")
    assert content.sessions_opened == 1
    assert [name for _, name in content.downloads] == ["index.json.blob", "drive-scsi0.img.fidx", "root.pxar.didx"]


def test_it_refuses_a_caller_without_read_or_backup_privileges(
    pbs_sim: Simulator, content: ContentStore, grant: Callable[[str, str, str], None]
) -> None:
    grant("alice@pbs!t1", "/datastore/store1/a", "DatastoreReader")
    with pytest.raises(ReaderError) as caught:
        content.open_reader(pbs_sim.state, "alice@pbs!t1", _query(ns="b", backup_id="200"), UPGRADE)
    assert (caught.value.status, caught.value.message) == (400, "no permissions on /datastore/store1/b")


def test_backup_privilege_needs_ownership_of_the_group(
    pbs_sim: Simulator, content: ContentStore, grant: Callable[[str, str, str], None]
) -> None:
    grant("alice@pbs!t1", "/datastore/store1", "DatastoreBackup")
    # alice's token owns vm/100: allowed; bob owns vm/200: refused
    content.open_reader(pbs_sim.state, "alice@pbs!t1", _query(), UPGRADE)
    with pytest.raises(ReaderError, match=r"^backup owner check failed!$"):
        content.open_reader(pbs_sim.state, "alice@pbs!t1", _query(ns="b", backup_id="200"), UPGRADE)


def test_a_user_may_read_what_its_token_owns_but_not_the_reverse(
    pbs_sim: Simulator, content: ContentStore, grant: Callable[[str, str, str], None]
) -> None:
    grant("alice@pbs", "/datastore/store1", "DatastoreBackup")
    content.open_reader(pbs_sim.state, "alice@pbs", _query(), UPGRADE)  # owner alice@pbs!t1
    grant("bob@pbs!t2", "/datastore/store1", "DatastoreBackup")
    with pytest.raises(ReaderError, match="backup owner check failed!"):
        content.open_reader(pbs_sim.state, "bob@pbs!t2", _query(ns="b", backup_id="200"), UPGRADE)  # owner bob@pbs


def test_a_missing_group_fails_the_owner_lookup_like_pbs(
    pbs_sim: Simulator, content: ContentStore, grant: Callable[[str, str, str], None]
) -> None:
    grant("alice@pbs", "/datastore/store1", "DatastoreBackup")
    with pytest.raises(ReaderError) as caught:
        content.open_reader(pbs_sim.state, "alice@pbs", _query(backup_id="999"), UPGRADE)
    assert caught.value.message == (
        'unable to read "/mnt/datastore/store1/ns/a/vm/999/owner" - No such file or directory (os error 2)'
    )


def test_a_missing_snapshot_gets_pbs_text(pbs_sim: Simulator, content: ContentStore) -> None:
    with pytest.raises(ReaderError) as caught:
        content.open_reader(pbs_sim.state, "root@pam", _query(backup_time=TIME + 60), UPGRADE)
    assert (caught.value.status, caught.value.message) == (400, "snapshot vm/100/2023-11-14T22:14:20Z does not exist.")


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "missing Upgrade header"), ({"upgrade": "proxmox-backup-protocol-v1"}, "invalid protocol name")],
)
def test_it_insists_on_the_reader_protocol(
    pbs_sim: Simulator, content: ContentStore, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(ReaderError, match=f"^{message}$"):
        content.open_reader(pbs_sim.state, "root@pam", _query(), headers)


def test_parameters_are_checked_by_the_schema(pbs_sim: Simulator, content: ContentStore) -> None:
    with pytest.raises(ReaderError, match="'backup-time': parameter is missing and it is not optional"):
        content.open_reader(pbs_sim.state, "root@pam", "store=store1&backup-type=vm&backup-id=100", UPGRADE)
    with pytest.raises(ReaderError, match="no such datastore 'nostore'"):
        content.open_reader(pbs_sim.state, "root@pam", _query(store="nostore"), UPGRADE)


def test_missing_files_get_pbs_status_and_text(pbs_sim: Simulator, content: ContentStore) -> None:
    session = content.open_reader(pbs_sim.state, "root@pam", _query(), UPGRADE)
    base = "/mnt/datastore/store1/ns/a/vm/100/2023-11-14T22:13:20Z"
    assert session.handle("GET", "/download", "file-name=client.log.blob") == (
        404, {"content-type": "text/plain"}, f'open file "{base}/client.log.blob" failed - not found'.encode(),
    )  # fmt: skip
    status, _, body = session.handle("GET", "/download", "file-name=other.img.fidx")
    assert (status, body.decode()) == (
        400, f'Unable to open fixed index "{base}/other.img.fidx" - No such file or directory (os error 2)',
    )  # fmt: skip
    assert session.handle("GET", "/speed", "")[:1] == (404,)
    assert session.handle("GET", "/download", "")[0] == 400


def test_fill_from_state_gives_every_snapshot_deduplicating_content(pbs_sim: Simulator) -> None:
    for ns, owner in (("tenant-a", "alice@pbs"), ("tenant-b", "bob@pbs")):
        for day in range(3):
            pbs_sim.seed_snapshot(store="store1", ns=ns, backup_type="vm", backup_id="100",
                                  backup_time=TIME + day * 86400, size=200 * MIB, owner=owner)  # fmt: skip
    pbs_sim.seed_snapshot(store="store1", ns="tenant-a", backup_type="ct", backup_id="7", backup_time=TIME, size=None)
    content = ContentStore()
    assert fill_from_state(content, pbs_sim.state, seed=3) == 6
    assert fill_from_state(content, pbs_sim.state, seed=3) == 0  # idempotent

    def chunks(ns: str, day: int) -> set[bytes]:
        snapshot = content.get(SnapshotRef("store1", ns, "vm", "100", TIME + day * 86400))
        assert snapshot is not None
        return {digest for digest, _ in snapshot.chunk_refs()}

    assert chunks("tenant-a", 0) == chunks("tenant-b", 0)  # the same template
    first, second = chunks("tenant-a", 0), chunks("tenant-a", 1)
    assert 0.6 < len(first & second) / len(first) < 1.0  # incremental: most chunks stay
    snapshot = content.get(SnapshotRef("store1", "tenant-a", "vm", "100", TIME))
    assert snapshot is not None
    assert snapshot.owner == "alice@pbs"
    manifest = parse.parse_manifest(snapshot.files["index.json.blob"])
    state_files = dict(pbs_sim.state.datastores["store1"].groups["tenant-a"][("vm", "100")].snapshots[TIME].files)
    for entry in manifest.files:
        assert entry.size == state_files[entry.filename]
        assert parse.parse_index(entry.filename, snapshot.files[entry.filename]).size == entry.size \
            if entry.is_index else len(snapshot.files[entry.filename]) == entry.size  # fmt: skip
