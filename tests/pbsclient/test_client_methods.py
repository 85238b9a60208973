"""Every client method, sync and async: what it sends (method, encoded path, query or JSON
body) and how it reads PBS's answer (sample answers shaped as in the API reference)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from pbsclient.models import (
    AclEntry,
    BackupGroup,
    CertificateInfo,
    DatastoreListItem,
    DatastoreStatus,
    DatastoreUsage,
    GcStatus,
    Namespace,
    PruneJob,
    PruneJobStatus,
    Remote,
    Snapshot,
    SnapshotFile,
    SyncJob,
    SyncJobStatus,
    Token,
    TokenSecret,
    User,
    VersionInfo,
)
from pbsclient.validation import PbsValidationError
from tests.pbsclient.support import FakePbs, body_of, invoke, make_client, pbs_data, query_of

FP = ":".join(["ab"] * 32)
UPID = "UPID:localhost:00001234:00005678:00000001:65000000:syncjob:job1:root@pam:"

SNAPSHOT = {
    "backup-type": "vm",
    "backup-id": "100",
    "backup-time": 1_700_000_000,
    "files": [{"filename": "index.json.blob", "crypt-mode": "none", "size": 512}, "drive-scsi0.img.fidx"],
    "size": 34_359_738_880,
    "owner": "acme@pbs!backup",
    "protected": False,
    "comment": "first line",
    "verification": {"upid": "UPID:x", "state": "ok"},
    "new-field-from-pbs-5": 1,
}
GC = {
    "store": "store1",
    "index-file-count": 10,
    "index-data-bytes": 4000,
    "disk-bytes": 1000,
    "disk-chunks": 7,
    "removed-bytes": 0,
    "removed-chunks": 0,
    "pending-bytes": 0,
    "pending-chunks": 0,
    "removed-bad": 0,
    "still-bad": 0,
    "last-run-state": "ok",
}
PRUNE = {"id": "t-acme", "store": "store1", "schedule": "daily", "ns": "clients/acme", "keep-daily": 7, "keep-last": 3}
SYNC = {"id": "job1", "store": "store1", "remote": "dr1", "remote-store": "s2", "group-filter": ["type:vm"],
        "rate-in": "10 MiB", "remove-vanished": True}  # fmt: skip
RUN_STATE = {
    "next-run": 1_700_003_600,
    "last-run-state": "OK",
    "last-run-upid": "UPID:y",
    "last-run-endtime": 1_700_000_100,
}


@dataclass
class Case:
    """One method call: how to call it, what must go over the wire, what PBS answers, and
    what the caller must get back."""

    id: str
    action: Callable[[Any], Any]
    method: str
    raw_path: str
    data: Any = None
    query: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    check: Callable[[Any], None] = lambda result: None


def _eq(expected: Any) -> Callable[[Any], None]:
    def check(result: Any) -> None:
        assert result == expected

    return check


def _check_snapshots(result: list[Snapshot]) -> None:
    (snap,) = result
    assert snap.backup_type == "vm"
    assert snap.backup_id == "100"
    assert snap.backup_time == 1_700_000_000
    assert snap.size == 34_359_738_880
    assert snap.owner == "acme@pbs!backup"
    assert snap.protected is False
    assert snap.verification_state == "ok"
    assert snap.verification_upid == "UPID:x"
    assert snap.files == (SnapshotFile("index.json.blob", "none", 512), SnapshotFile("drive-scsi0.img.fidx"))
    assert snap.extra == {"new-field-from-pbs-5": 1}
    assert snap.group == ("vm", "100")


def _check_status(result: DatastoreStatus) -> None:
    assert (result.total, result.used, result.avail) == (100, 40, 60)
    assert result.counts is not None
    assert result.counts["vm"].snapshots == 5
    assert result.gc_status is not None
    assert result.gc_status.dedup_factor == 4.0


CASES = [
    Case("version", lambda c: c.version(), "GET", "/api2/json/version",
         {"version": "4.2", "release": "3", "repoid": "bc863d45"},
         check=_eq(VersionInfo("4.2", "3", "bc863d45"))),
    Case("ping", lambda c: c.ping(), "GET", "/api2/json/ping", {"pong": True}, check=_eq(True)),
    # users
    Case("user_list", lambda c: c.user_list(), "GET", "/api2/json/access/users",
         [{"userid": "acme@pbs", "comment": "Acme"}, {"userid": "root@pam", "enable": False, "expire": 0}],
         check=_eq([User("acme@pbs", comment="Acme"), User("root@pam", enable=False)])),
    Case("user_list_tokens", lambda c: c.user_list(include_tokens=True), "GET", "/api2/json/access/users",
         [{"userid": "acme@pbs", "tokens": [{"tokenid": "acme@pbs!backup", "expire": 1900000000}],
           "totp-locked": False}],
         query=[("include_tokens", "1")],
         check=_eq([User("acme@pbs", tokens=(Token("acme@pbs!backup", "backup", expire=1_900_000_000),))])),
    Case("user_get", lambda c: c.user_get("john@example.com@pbs"), "GET",
         "/api2/json/access/users/john%40example.com%40pbs", {"userid": "john@example.com@pbs", "email": "j@x"},
         check=_eq(User("john@example.com@pbs", email="j@x"))),
    Case("user_create", lambda c: c.user_create(userid="acme@pbs", comment="Acme Ltd"), "POST",
         "/api2/json/access/users", body={"userid": "acme@pbs", "comment": "Acme Ltd"}, check=_eq(None)),
    Case("user_create_disabled", lambda c: c.user_create(userid="acme@pbs", enable=False, expire=1_900_000_000,
                                                          email="a@b.c", firstname="Ann", lastname="Lee"),
         "POST", "/api2/json/access/users",
         body={"userid": "acme@pbs", "enable": False, "expire": 1_900_000_000, "email": "a@b.c",
               "firstname": "Ann", "lastname": "Lee"}),
    Case("user_update", lambda c: c.user_update("acme@pbs", enable=False, delete=["comment", "email"]), "PUT",
         "/api2/json/access/users/acme%40pbs", body={"enable": False, "delete": ["comment", "email"]}),
    Case("user_update_clear_expiry", lambda c: c.user_update("acme@pbs", enable=True, expire=0), "PUT",
         "/api2/json/access/users/acme%40pbs", body={"enable": True, "expire": 0}),
    Case("user_delete", lambda c: c.user_delete("acme@pbs"), "DELETE", "/api2/json/access/users/acme%40pbs"),
    # tokens
    Case("token_list", lambda c: c.token_list("acme@pbs"), "GET", "/api2/json/access/users/acme%40pbs/token",
         [{"token-name": "backup", "tokenid": "acme@pbs!backup", "enable": True, "comment": "c"}],
         check=_eq([Token("acme@pbs!backup", "backup", comment="c")])),
    Case("token_get", lambda c: c.token_get("acme@pbs", "backup"), "GET",
         "/api2/json/access/users/acme%40pbs/token/backup", {"tokenid": "acme@pbs!backup", "enable": False},
         check=_eq(Token("acme@pbs!backup", "backup", enable=False))),
    Case("token_create", lambda c: c.token_create("acme@pbs", "backup", comment="for backups"), "POST",
         "/api2/json/access/users/acme%40pbs/token/backup",
         {"tokenid": "acme@pbs!backup", "value": "0d9f1a2b-0000-4000-8000-000000000001"},
         body={"comment": "for backups"},
         check=_eq(TokenSecret("acme@pbs!backup", "0d9f1a2b-0000-4000-8000-000000000001"))),
    Case("token_create_disabled", lambda c: c.token_create("acme@pbs", "restore-x", expire=1_900_000_000,
                                                            enable=False),
         "POST", "/api2/json/access/users/acme%40pbs/token/restore-x",
         {"tokenid": "acme@pbs!restore-x", "value": "v"}, body={"expire": 1_900_000_000, "enable": False}),
    Case("token_update_regenerate", lambda c: c.token_update("acme@pbs", "backup", regenerate=True), "PUT",
         "/api2/json/access/users/acme%40pbs/token/backup", {"secret": "new-secret"},
         body={"regenerate": True}, check=_eq("new-secret")),
    Case("token_update_plain", lambda c: c.token_update("acme@pbs", "backup", enable=False, delete=["comment"]),
         "PUT", "/api2/json/access/users/acme%40pbs/token/backup", None,
         body={"enable": False, "delete": ["comment"]}, check=_eq(None)),
    Case("token_delete", lambda c: c.token_delete("acme@pbs", "backup"), "DELETE",
         "/api2/json/access/users/acme%40pbs/token/backup"),
    # ACL and permissions
    Case("acl_list", lambda c: c.acl_list(), "GET", "/api2/json/access/acl",
         [{"path": "/datastore/s1/clients/acme", "ugid": "acme@pbs!backup", "ugid_type": "user",
           "propagate": True, "roleid": "DatastoreBackup"}],
         check=_eq([AclEntry("/datastore/s1/clients/acme", "acme@pbs!backup", "user", True, "DatastoreBackup")])),
    Case("acl_list_exact", lambda c: c.acl_list(path="/datastore/s1/clients/acme", exact=True), "GET",
         "/api2/json/access/acl", [], query=[("exact", "1"), ("path", "/datastore/s1/clients/acme")],
         check=_eq([])),
    Case("acl_update", lambda c: c.acl_update(path="/datastore/s1/clients/acme", role="DatastoreBackup",
                                              auth_id="acme@pbs!backup"),
         "PUT", "/api2/json/access/acl",
         body={"path": "/datastore/s1/clients/acme", "role": "DatastoreBackup", "auth-id": "acme@pbs!backup",
               "propagate": True}),
    Case("acl_delete", lambda c: c.acl_update(path="/datastore/s1/clients/acme", role="DatastorePowerUser",
                                              auth_id="acme@pbs", propagate=False, delete=True),
         "PUT", "/api2/json/access/acl",
         body={"path": "/datastore/s1/clients/acme", "role": "DatastorePowerUser", "auth-id": "acme@pbs",
               "propagate": False, "delete": True}),
    Case("permissions_get", lambda c: c.permissions_get(auth_id="acme@pbs!backup", path="/datastore/s1/clients/acme"),
         "GET", "/api2/json/access/permissions",
         {"/datastore/s1/clients/acme": {"Datastore.Backup": 1, "Datastore.Read": 0}},
         query=[("auth-id", "acme@pbs!backup"), ("path", "/datastore/s1/clients/acme")],
         check=_eq({"/datastore/s1/clients/acme": {"Datastore.Backup": True, "Datastore.Read": False}})),
    # namespaces
    Case("namespace_list", lambda c: c.namespace_list("store1", parent="clients", max_depth=1), "GET",
         "/api2/json/admin/datastore/store1/namespace", [{"ns": "clients"}, {"ns": "clients/acme", "comment": "x"}],
         query=[("max-depth", "1"), ("parent", "clients")],
         check=_eq([Namespace("clients"), Namespace("clients/acme", "x")])),
    Case("namespace_list_root", lambda c: c.namespace_list("store1"), "GET",
         "/api2/json/admin/datastore/store1/namespace", [{"ns": ""}], check=_eq([Namespace("")])),
    Case("namespace_create", lambda c: c.namespace_create("store1", "acme", parent="clients"), "POST",
         "/api2/json/admin/datastore/store1/namespace", "clients/acme",
         body={"name": "acme", "parent": "clients"}, check=_eq("clients/acme")),
    Case("namespace_create_top", lambda c: c.namespace_create("store1", "clients"), "POST",
         "/api2/json/admin/datastore/store1/namespace", "clients", body={"name": "clients"}, check=_eq("clients")),
    Case("namespace_delete", lambda c: c.namespace_delete("store1", "clients/acme", delete_groups=True), "DELETE",
         "/api2/json/admin/datastore/store1/namespace",
         {"removed-groups": 2, "protected-snapshots": 0, "removed-snapshots": 9},
         query=[("delete-groups", "1"), ("ns", "clients/acme")],
         check=_eq({"removed_groups": 2, "protected_snapshots": 0, "removed_snapshots": 9})),
    Case("namespace_delete_old_pbs", lambda c: c.namespace_delete("store1", "clients/acme"), "DELETE",
         "/api2/json/admin/datastore/store1/namespace", None, query=[("ns", "clients/acme")], check=_eq({})),
    # prune jobs
    Case("prune_job_list", lambda c: c.prune_job_list(), "GET", "/api2/json/config/prune", [PRUNE],
         check=_eq([PruneJob("t-acme", "store1", "daily", ns="clients/acme", keep_daily=7, keep_last=3)])),
    Case("prune_job_get", lambda c: c.prune_job_get("t-acme"), "GET", "/api2/json/config/prune/t-acme",
         {**PRUNE, "max-depth": 2, "disable": True},
         check=_eq(PruneJob("t-acme", "store1", "daily", ns="clients/acme", max_depth=2, keep_daily=7,
                            keep_last=3, disable=True))),
    Case("prune_job_status_list", lambda c: c.prune_job_status_list(store="store1"), "GET", "/api2/json/admin/prune",
         [{**PRUNE, **RUN_STATE}], query=[("store", "store1")],
         check=_eq([PruneJobStatus("t-acme", "store1", "daily", ns="clients/acme", keep_daily=7, keep_last=3,
                                   next_run=1_700_003_600, last_run_state="OK", last_run_upid="UPID:y",
                                   last_run_endtime=1_700_000_100)])),
    Case("prune_job_create", lambda c: c.prune_job_create(PruneJob(
             id="t-acme", store="store1", schedule="mon..fri 02:00", ns="clients/acme", max_depth=7, keep_last=3,
             keep_daily=7, keep_weekly=4, keep_monthly=6, keep_yearly=1, keep_hourly=24, comment="acme")),
         "POST", "/api2/json/config/prune",
         body={"id": "t-acme", "store": "store1", "schedule": "mon..fri 02:00", "ns": "clients/acme",
               "max-depth": 7, "keep-last": 3, "keep-hourly": 24, "keep-daily": 7, "keep-weekly": 4,
               "keep-monthly": 6, "keep-yearly": 1, "comment": "acme"}),
    Case("prune_job_update", lambda c: c.prune_job_update("t-acme", delete=["keep_hourly", "comment"],
                                                          keep_daily=14, schedule="daily", disable=False),
         "PUT", "/api2/json/config/prune/t-acme",
         body={"keep-daily": 14, "schedule": "daily", "disable": False, "delete": ["keep-hourly", "comment"]}),
    Case("prune_job_delete", lambda c: c.prune_job_delete("t-acme"), "DELETE", "/api2/json/config/prune/t-acme"),
    # datastores, groups, snapshots, usage
    Case("datastore_list", lambda c: c.datastore_list(), "GET", "/api2/json/admin/datastore",
         [{"store": "store1", "mount-status": "nonremovable", "backend-type": "filesystem", "comment": "main"}],
         check=_eq([DatastoreListItem("store1", comment="main")])),
    Case("datastore_status", lambda c: c.datastore_status("store1", verbose=True), "GET",
         "/api2/json/admin/datastore/store1/status",
         {"total": 100, "used": 40, "avail": 60, "backend-type": "filesystem",
          "counts": {"vm": {"groups": 2, "snapshots": 5}, "ct": None}, "gc-status": GC},
         query=[("verbose", "1")], check=_check_status),
    Case("datastore_status_plain", lambda c: c.datastore_status("store1"), "GET",
         "/api2/json/admin/datastore/store1/status", {"total": 1, "used": 0, "avail": 1},
         check=_eq(DatastoreStatus(total=1, used=0, avail=1))),
    Case("group_list", lambda c: c.group_list("store1", ns="clients/acme"), "GET",
         "/api2/json/admin/datastore/store1/groups",
         [{"backup-type": "ct", "backup-id": "101", "last-backup": 1_700_000_000, "backup-count": 4,
           "files": ["root.pxar.didx"], "owner": "acme@pbs!backup"}],
         query=[("ns", "clients/acme")],
         check=_eq([BackupGroup("ct", "101", 1_700_000_000, 4, owner="acme@pbs!backup", files=("root.pxar.didx",))])),
    Case("snapshot_list", lambda c: c.snapshot_list("store1", ns="clients/acme", backup_type="vm", backup_id="100"),
         "GET", "/api2/json/admin/datastore/store1/snapshots", [SNAPSHOT],
         query=[("backup-id", "100"), ("backup-type", "vm"), ("ns", "clients/acme")], check=_check_snapshots),
    Case("snapshot_list_root", lambda c: c.snapshot_list("store1", ns=""), "GET",
         "/api2/json/admin/datastore/store1/snapshots",
         [{"backup-type": "host", "backup-id": "h", "backup-time": 1, "protected": True, "files": []}],
         check=_eq([Snapshot("host", "h", 1, protected=True)])),
    Case("gc_status", lambda c: c.gc_status("store1"), "GET", "/api2/json/admin/datastore/store1/gc", GC,
         check=_eq(GcStatus(store="store1", index_file_count=10, index_data_bytes=4000, disk_bytes=1000,
                            disk_chunks=7, last_run_state="ok"))),
    Case("datastore_usage", lambda c: c.datastore_usage(), "GET", "/api2/json/status/datastore-usage",
         [{"store": "store1", "total": 100, "used": 40, "avail": 60, "mount-status": "nonremovable",
           "history": [0.1, None, 0.4], "history-start": 1, "history-delta": 86400, "gc-status": GC,
           "backend-type": "filesystem"},
          {"store": "store2", "mount-status": "nonremovable", "backend-type": "filesystem"}],
         check=lambda r: (r[0].history == (0.1, None, 0.4) and r[0].gc_status.disk_bytes == 1000
                          and r[1] == DatastoreUsage("store2")) or pytest.fail(repr(r))),
    Case("certificate_info", lambda c: c.certificate_info(), "GET", "/api2/json/nodes/localhost/certificates/info",
         [{"filename": "proxy.pem", "fingerprint": FP.upper(), "subject": "CN=pbs", "issuer": "CN=pbs",
           "san": ["pbs.example"], "notbefore": 1, "notafter": 2, "pem": "-----BEGIN...",
           "public-key-type": "rsa", "public-key-bits": 4096}],
         check=_eq([CertificateInfo("proxy.pem", FP, "CN=pbs", "CN=pbs", ("pbs.example",), 1, 2, "-----BEGIN...",
                                    "rsa", 4096)])),
    # remotes
    Case("remote_list", lambda c: c.remote_list(), "GET", "/api2/json/config/remote",
         [{"name": "dr1", "host": "pbs2.example", "auth-id": "sync@pbs!pull", "port": 8007, "fingerprint": FP}],
         check=_eq([Remote("dr1", "pbs2.example", "sync@pbs!pull", port=8007, fingerprint=FP)])),
    Case("remote_get", lambda c: c.remote_get("dr1"), "GET", "/api2/json/config/remote/dr1",
         {"name": "dr1", "host": "10.0.0.2", "auth-id": "sync@pbs", "use-node-proxy": True},
         check=_eq(Remote("dr1", "10.0.0.2", "sync@pbs", use_node_proxy=True))),
    Case("remote_create", lambda c: c.remote_create("dr1", host="pbs2.example", auth_id="sync@pbs!pull",
                                                    password="remote-secret", fingerprint=FP.upper(), port=8007),
         "POST", "/api2/json/config/remote",
         body={"name": "dr1", "host": "pbs2.example", "auth-id": "sync@pbs!pull", "password": "remote-secret",
               "port": 8007, "fingerprint": FP}),
    Case("remote_update", lambda c: c.remote_update("dr1", comment="dr site", delete=["port"]), "PUT",
         "/api2/json/config/remote/dr1", body={"comment": "dr site", "delete": ["port"]}),
    Case("remote_delete", lambda c: c.remote_delete("dr1"), "DELETE", "/api2/json/config/remote/dr1"),
    # sync jobs
    Case("sync_job_list", lambda c: c.sync_job_list(sync_direction="all"), "GET", "/api2/json/config/sync", [SYNC],
         query=[("sync-direction", "all")],
         check=lambda r: (r[0].group_filter == ("type:vm",) and r[0].remove_vanished
                          and r[0].extra == {"rate-in": "10 MiB"}) or pytest.fail(repr(r))),
    Case("sync_job_get", lambda c: c.sync_job_get("job1"), "GET", "/api2/json/config/sync/job1", SYNC,
         check=lambda r: (r.remote == "dr1" and r.remote_store == "s2") or pytest.fail(repr(r))),
    Case("sync_job_status_list", lambda c: c.sync_job_status_list(), "GET", "/api2/json/admin/sync",
         [{**SYNC, **RUN_STATE}], query=[("sync-direction", "all")],
         check=lambda r: (isinstance(r[0], SyncJobStatus) and r[0].last_run_state == "OK"
                          and r[0].next_run == 1_700_003_600) or pytest.fail(repr(r))),
    Case("sync_job_create", lambda c: c.sync_job_create(
             SyncJob(id="job1", store="store1", remote="dr1", remote_store="s2", ns="clients/acme",
                     schedule="hourly", group_filter=("type:vm",), remove_vanished=True), rate_in="10MiB"),
         "POST", "/api2/json/config/sync",
         body={"id": "job1", "store": "store1", "remote-store": "s2", "remote": "dr1", "ns": "clients/acme",
               "schedule": "hourly", "group-filter": ["type:vm"], "remove-vanished": True, "rate-in": "10MiB"}),
    Case("sync_job_update", lambda c: c.sync_job_update("job1", schedule="daily", delete=["rate_in"]), "PUT",
         "/api2/json/config/sync/job1", body={"schedule": "daily", "delete": ["rate-in"]}),
    Case("sync_job_delete", lambda c: c.sync_job_delete("job1"), "DELETE", "/api2/json/config/sync/job1"),
    Case("sync_job_run", lambda c: c.sync_job_run("job1"), "POST", "/api2/json/admin/sync/job1/run", UPID,
         check=_eq(UPID)),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_method_sends_pbs_request_and_parses_answer(kind: str, case: Case) -> None:
    fake = FakePbs(responder=lambda request: pbs_data(case.data, digest="0" * 64))
    client = make_client(kind, fake)
    result = invoke(client, case.action)

    assert len(fake.requests) == 1
    request = fake.last
    assert request.method == case.method
    assert request.url.raw_path.split(b"?")[0].decode() == case.raw_path
    assert query_of(request) == sorted(case.query)
    if case.method in ("POST", "PUT"):
        assert body_of(request) == (case.body or {})
        if case.body:
            assert request.headers["content-type"] == "application/json"
    else:
        assert request.content == b""
    case.check(result)


def test_every_public_method_is_covered_by_a_case() -> None:
    from pbsclient import PbsClient

    public = {name for name in dir(PbsClient) if not name.startswith("_") and callable(getattr(PbsClient, name))}
    public -= {"close"}
    covered = {case.id for case in CASES}
    missing = sorted(name for name in public if not any(cid == name or cid.startswith(name + "_") for cid in covered))
    assert missing == []


def test_async_client_has_the_same_methods_as_the_sync_client() -> None:
    import inspect

    from pbsclient import AsyncPbsClient, PbsClient

    for name, method in inspect.getmembers(PbsClient, inspect.isfunction):
        if name.startswith("_") or name in {"close"}:
            continue
        other = getattr(AsyncPbsClient, name)
        assert inspect.iscoroutinefunction(other), name
        assert inspect.signature(other).parameters.keys() == inspect.signature(method).parameters.keys(), name


class TestRefusedBeforeAnyCall:
    """Bad input never reaches PBS."""

    @pytest.mark.parametrize(
        "action",
        [
            lambda c: c.user_create(userid="no-realm"),
            lambda c: c.user_create(userid="a@pbs", password="short"),
            lambda c: c.user_get(".hidden@pbs"),
            lambda c: c.token_create("a" * 55 + "@pbs", "restore-x"),
            lambda c: c.token_get("acme@pbs", "bad name"),
            lambda c: c.acl_update(path="/datastore/s1/acme", role="Owner", auth_id="acme@pbs"),
            lambda c: c.acl_update(path="/nope", role="DatastoreBackup", auth_id="acme@pbs"),
            lambda c: c.acl_update(path="/datastore/s1", role="DatastoreBackup", auth_id="acme"),
            lambda c: c.namespace_create("store1", "a/b"),
            lambda c: c.namespace_create("store1", "h", parent="a/b/c/d/e/f/g"),
            lambda c: c.namespace_delete("store1", ""),
            lambda c: c.namespace_list("s1"),
            lambda c: c.namespace_list("store1", max_depth=8),
            lambda c: c.prune_job_create(PruneJob(id="t", store="store1", schedule="daily")),
            lambda c: c.prune_job_create(PruneJob(id="t-acme", store="store1", schedule="every day")),
            lambda c: c.prune_job_create(PruneJob(id="t-acme", store="store1", schedule="daily", keep_last=0)),
            lambda c: c.prune_job_update("t-acme", delete=["store"]),
            lambda c: c.user_update("acme@pbs", delete=["userid"]),
            lambda c: c.snapshot_list("store1", backup_type="lxc"),
            lambda c: c.remote_create("dr1", host="h", auth_id="a@pbs", password="p", fingerprint="aa:bb"),
            lambda c: c.remote_create("dr1", host="h", auth_id="a@pbs", password="p", port=70000),
            lambda c: c.sync_job_create(SyncJob(id="job1", store="store1", remote_store="s2", schedule="sometimes")),
            lambda c: c.sync_job_list(sync_direction="sideways"),
            lambda c: c.certificate_info(node="../etc"),
        ],
    )
    def test_invalid_arguments_raise_validation_errors_without_a_request(self, action: Any) -> None:
        fake = FakePbs()
        with pytest.raises(PbsValidationError):
            invoke(make_client("sync", fake), action)
        assert fake.requests == []

    def test_unknown_update_fields_are_type_errors(self) -> None:
        fake = FakePbs()
        client = make_client("sync", fake)
        with pytest.raises(TypeError, match="keep_everything"):
            client.prune_job_update("t-acme", keep_everything=1)
        with pytest.raises(TypeError, match="colour"):
            client.sync_job_update("job1", colour="red")
        assert fake.requests == []


class TestAnswerShapes:
    def test_a_non_json_success_body_is_an_http_error(self) -> None:
        import httpx

        from pbsclient.errors import PbsHttpError

        fake = FakePbs(responder=lambda request: httpx.Response(200, content=b"<html>proxy</html>"))
        with pytest.raises(PbsHttpError, match="not JSON"):
            make_client("sync", fake).version()

    def test_a_body_without_data_is_an_http_error(self) -> None:
        import httpx

        from pbsclient.errors import PbsHttpError

        fake = FakePbs(responder=lambda request: httpx.Response(200, json={"nodata": 1}))
        with pytest.raises(PbsHttpError, match="no 'data'"):
            make_client("sync", fake).version()

    def test_a_missing_required_field_is_an_http_error_naming_it(self) -> None:
        from pbsclient.errors import PbsHttpError

        fake = FakePbs(responder=lambda request: pbs_data([{"comment": "no userid"}]))
        with pytest.raises(PbsHttpError, match="userid"):
            make_client("sync", fake).user_list()

    def test_base_url_may_carry_the_api_prefix(self) -> None:
        fake = FakePbs(responder=lambda request: pbs_data({"pong": True}))
        client = make_client("sync", fake, base_url="https://pbs.test:8007/api2/json/")
        assert client.ping() is True
        assert str(fake.last.url) == "https://pbs.test:8007/api2/json/ping"

    @pytest.mark.parametrize(
        "url", ["http://pbs.test:8007", "pbs.test:8007", "https://u:p@pbs.test", "https://pbs.test/other"]
    )
    def test_bad_base_urls_are_refused(self, url: str) -> None:
        with pytest.raises(PbsValidationError):
            make_client("sync", FakePbs(), base_url=url)
