"""Datastores, groups, snapshots, GC, usage, datastore config, tasks, certificates
(reference sections 7, 8 and 10)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pbssim.simulator import Simulator
from tests.pbssim.core_support import Pbs, error, ticket_login

NS = "clients/acme"
NS_PATH = "/datastore/store1/clients/acme"
T0 = 1_700_000_000


@pytest.fixture
def pbs() -> Iterator[Pbs]:
    harness = Pbs(stores=("store1", "store2"))
    harness.sim.add_datastore(
        "store1",
        total_bytes=1000_000,
        used_bytes=400_000,
        gc_index_data_bytes=900_000,
        gc_disk_bytes=300_000,
        comment="main store",
    )
    yield harness
    harness.close()


def seed(pbs: Pbs, *, ns: str = NS, backup_id: str = "100", owner: str = "acme@pbs!backup", t: int = T0, **kw) -> None:
    kw.setdefault("size", 10_000)
    pbs.sim.seed_snapshot(
        store="store1",
        ns=ns,
        backup_type=kw.pop("backup_type", "vm"),
        backup_id=backup_id,
        backup_time=t,
        owner=owner,
        **kw,
    )


def tenant(pbs: Pbs, role: str, path: str = NS_PATH) -> tuple[str, str]:
    """acme@pbs and its token ``acme@pbs!t`` with ``role`` on ``path``."""
    auth = pbs.user_with_token("acme@pbs")
    pbs.token("acme@pbs", "backup")
    for auth_id in ("acme@pbs", auth[0]):
        pbs.grant(path, auth_id, role)
    return auth


# --- /admin/datastore ---------------------------------------------------------------------------


def test_datastore_list_follows_rights(pbs: Pbs) -> None:
    assert [s["store"] for s in pbs.ok("GET", "/admin/datastore")] == ["store1", "store2"]
    auth = tenant(pbs, "DatastoreBackup")
    # Rights only below the store: listed, comment hidden.
    assert pbs.ok("GET", "/admin/datastore", auth=auth) == [
        {"store": "store1", "mount-status": "nonremovable", "backend-type": "filesystem"}
    ]
    for auth_id in ("acme@pbs", auth[0]):
        pbs.grant("/datastore/store1", auth_id, "DatastoreAudit")
    assert pbs.ok("GET", "/admin/datastore", auth=auth)[0]["comment"] == "main store"
    nobody = pbs.user_with_token("nobody@pbs")
    assert pbs.ok("GET", "/admin/datastore", auth=nobody) == []


def test_status_figures_are_zero_without_rights_on_the_store_itself(pbs: Pbs) -> None:
    assert pbs.ok("GET", "/admin/datastore/store1/status") == {
        "total": 1000_000,
        "used": 400_000,
        "avail": 600_000,
        "backend-type": "filesystem",
    }
    auth = tenant(pbs, "DatastoreBackup")
    seed(pbs)
    assert pbs.ok("GET", "/admin/datastore/store1/status", auth=auth) == {
        "total": 0,
        "used": 0,
        "avail": 0,
        "backend-type": "filesystem",
    }
    nobody = pbs.user_with_token("nobody@pbs")
    assert error(pbs.call("GET", "/admin/datastore/store1/status", auth=nobody)) == (403, "permission check failed")


def test_verbose_status_counts_all_namespaces_and_filters_by_owner_without_audit(pbs: Pbs) -> None:
    seed(pbs, backup_id="100", t=T0)
    seed(pbs, backup_id="100", t=T0 + 60)
    seed(pbs, ns="clients/other", backup_id="200", owner="other@pbs", backup_type="ct")
    full = pbs.ok("GET", "/admin/datastore/store1/status", params={"verbose": 1})
    assert full["counts"] == {"ct": {"groups": 1, "snapshots": 1}, "vm": {"groups": 1, "snapshots": 2}}
    assert full["gc-status"]["index-data-bytes"] == 900_000
    auth = tenant(pbs, "DatastoreBackup")
    mine = pbs.ok("GET", "/admin/datastore/store1/status", auth=auth, params={"verbose": 1})
    assert mine["counts"] == {}  # the groups belong to acme@pbs!backup, not to acme@pbs!t
    # The user itself (logged in) counts the groups owned by its tokens.
    headers = ticket_login(pbs, "acme@pbs")
    user_view = pbs.client().get("/admin/datastore/store1/status", headers=headers, params={"verbose": 1})
    assert user_view.json()["data"]["counts"] == {"vm": {"groups": 1, "snapshots": 2}}
    assert "gc-status" not in mine


def test_groups_are_one_level_and_owner_filtered_with_backup_only(pbs: Pbs) -> None:
    seed(pbs, backup_id="100", t=T0)
    seed(pbs, backup_id="100", t=T0 + 60)
    seed(pbs, backup_id="101", owner="someone@pbs")
    seed(pbs, ns=f"{NS}/sub", backup_id="300")
    groups = pbs.ok("GET", "/admin/datastore/store1/groups", params={"ns": NS})
    assert [(g["backup-id"], g["backup-count"], g["last-backup"]) for g in groups] == [
        ("100", 2, T0 + 60),
        ("101", 1, T0),
    ]
    assert groups[0] == {
        "backup-type": "vm",
        "backup-id": "100",
        "last-backup": T0 + 60,
        "backup-count": 2,
        "files": ["index.json.blob", "qemu-server.conf.blob", "drive-scsi0.img.fidx"],
        "owner": "acme@pbs!backup",
    }
    # The user (via a ticket) with Backup only sees groups owned by itself or its tokens;
    # its token ``t`` owns none of them.
    auth = tenant(pbs, "DatastoreBackup")
    assert pbs.ok("GET", "/admin/datastore/store1/groups", auth=auth, params={"ns": NS}) == []
    headers = ticket_login(pbs, "acme@pbs")
    mine = pbs.client().get("/admin/datastore/store1/groups", headers=headers, params={"ns": NS}).json()["data"]
    assert [g["backup-id"] for g in mine] == ["100"]


def test_snapshots_carry_logical_size_verification_protection_and_owner(pbs: Pbs) -> None:
    seed(pbs, backup_id="100", size=5_000_000, verification="ok", protected=True)
    seed(pbs, backup_id="101", size=None)
    snaps = pbs.ok("GET", "/admin/datastore/store1/snapshots", params={"ns": NS})
    first, second = snaps
    assert first["size"] == 5_000_000 == sum(f["size"] for f in first["files"])
    assert first["files"][0]["filename"] == "index.json.blob"
    assert first["verification"]["state"] == "ok"
    assert re.match(r"^UPID:localhost:", first["verification"]["upid"])
    assert first["protected"] is True
    assert first["owner"] == "acme@pbs!backup"
    assert "size" not in second  # no manifest: no size
    assert "verification" not in second
    assert second["protected"] is False


def test_snapshot_filters_and_no_recursion(pbs: Pbs) -> None:
    seed(pbs, backup_id="100")
    seed(pbs, backup_id="100", backup_type="ct")
    seed(pbs, backup_id="101")
    seed(pbs, ns=f"{NS}/sub", backup_id="102")

    def ids(**params: str) -> list[tuple[str, str]]:
        snaps = pbs.ok("GET", "/admin/datastore/store1/snapshots", params={"ns": NS, **params})
        return [(s["backup-type"], s["backup-id"]) for s in snaps]

    assert ids() == [("ct", "100"), ("vm", "100"), ("vm", "101")]
    assert ids(**{"backup-type": "vm"}) == [("vm", "100"), ("vm", "101")]
    assert ids(**{"backup-id": "100"}) == [("ct", "100"), ("vm", "100")]
    assert ids(**{"backup-type": "vm", "backup-id": "999"}) == []


def test_snapshot_listing_needs_audit_or_backup_on_the_namespace(pbs: Pbs) -> None:
    seed(pbs)
    auth = tenant(pbs, "DatastoreReader", "/datastore/store1/clients/other")
    response = pbs.call("GET", "/admin/datastore/store1/snapshots", auth=auth, params={"ns": NS})
    assert error(response) == (
        403,
        "permission check failed - missing Datastore.Audit|Datastore.Backup on /datastore/store1/clients/acme",
    )


# --- GC and usage ---------------------------------------------------------------------------------


def test_gc_status_needs_audit_on_the_store_and_gives_dedup_figures(pbs: Pbs) -> None:
    gc = pbs.ok("GET", "/admin/datastore/store1/gc")
    assert gc["store"] == "store1"
    assert (gc["index-data-bytes"], gc["disk-bytes"]) == (900_000, 300_000)
    auth = tenant(pbs, "DatastoreAdmin")
    assert error(pbs.call("GET", "/admin/datastore/store1/gc", auth=auth)) == (403, "permission check failed")
    upid = pbs.ok("POST", "/admin/datastore/store1/gc")
    assert pbs.ok("GET", "/admin/datastore/store1/gc")["upid"] == upid


def test_gc_figures_follow_the_data_when_not_set(pbs: Pbs) -> None:
    seed(pbs, ns="", backup_id="1", size=1234, owner=None, t=T0)
    gc = pbs.ok("GET", "/admin/datastore/store2/gc")
    assert gc["index-data-bytes"] == 0
    pbs.sim.seed_snapshot(store="store2", ns="", backup_type="ct", backup_id="1", backup_time=T0, size=4321)
    assert pbs.ok("GET", "/admin/datastore/store2/gc")["index-data-bytes"] == 4321


def test_datastore_usage_lists_figures_only_with_store_rights(pbs: Pbs) -> None:
    usage = {u["store"]: u for u in pbs.ok("GET", "/status/datastore-usage")}
    assert usage["store1"]["total"] == 1000_000
    assert usage["store1"]["gc-status"]["disk-bytes"] == 300_000
    pbs.namespace("store1", "clients")
    pbs.namespace("store1", NS)
    auth = tenant(pbs, "DatastoreBackup")
    assert pbs.ok("GET", "/status/datastore-usage", auth=auth) == [
        {"store": "store1", "mount-status": "nonremovable", "backend-type": "filesystem"}
    ]


# --- /config/datastore --------------------------------------------------------------------------


def test_datastore_config_create_returns_a_finished_task(pbs: Pbs) -> None:
    upid = pbs.ok("POST", "/config/datastore", data={"name": "store3", "path": "/mnt/store3", "comment": "new"})
    task = pbs.ok("GET", f"/nodes/localhost/tasks/{upid}/status")
    assert (task["status"], task["exitstatus"], task["type"], task["id"]) == (
        "stopped",
        "OK",
        "create-datastore",
        "store3",
    )
    assert pbs.ok("GET", "/config/datastore/store3") == {"name": "store3", "path": "/mnt/store3", "comment": "new"}
    assert pbs.ok("GET", "/admin/datastore/store3/status")["total"] > 0


def test_a_prune_schedule_on_create_becomes_a_root_prune_job(pbs: Pbs) -> None:
    pbs.ok(
        "POST",
        "/config/datastore",
        data={"name": "store3", "path": "/mnt/s3", "prune-schedule": "daily", "keep-last": 3},
    )
    pbs.ok("POST", "/config/datastore", data={"name": "store4", "path": "/mnt/s4", "keep-last": 3})
    jobs = pbs.ok("GET", "/config/prune")
    assert len(jobs) == 1
    job = jobs[0]
    assert job["id"].startswith("default-store3-")
    assert len(job["id"]) == 32
    assert {k: job[k] for k in ("store", "schedule", "keep-last")} == {
        "store": "store3",
        "schedule": "daily",
        "keep-last": 3,
    }
    assert "keep-last" not in pbs.ok("GET", "/config/datastore/store3")


def test_datastore_config_delete_removes_prune_jobs_unless_kept(pbs: Pbs) -> None:
    pbs.ok("POST", "/config/prune", data={"id": "job-s1", "store": "store1", "schedule": "daily"})
    pbs.ok("POST", "/config/prune", data={"id": "job-s2", "store": "store2", "schedule": "daily"})
    pbs.ok("DELETE", "/config/datastore/store1")
    pbs.ok("DELETE", "/config/datastore/store2", params={"keep-job-configs": 1})
    assert [job["id"] for job in pbs.ok("GET", "/config/prune")] == ["job-s2"]
    assert error(pbs.call("GET", "/admin/datastore/store1/status")) == (400, "no such datastore 'store1'")


def test_datastore_config_list_needs_audit_and_has_a_digest(pbs: Pbs) -> None:
    body = pbs.call("GET", "/config/datastore").json()
    assert [c["name"] for c in body["data"]] == ["store1", "store2"]
    assert len(body["digest"]) == 64
    auth = tenant(pbs, "DatastoreAdmin")
    assert pbs.ok("GET", "/config/datastore", auth=auth) == []


def test_datastore_config_update(pbs: Pbs) -> None:
    pbs.ok("PUT", "/config/datastore/store1", data={"comment": "renamed", "gc-schedule": "sat 02:00"})
    assert pbs.ok("GET", "/config/datastore/store1")["gc-schedule"] == "sat 02:00"
    assert "next-run" in pbs.ok("GET", "/admin/datastore/store1/gc")
    response = pbs.call("PUT", "/config/datastore/store1", data={"prune-schedule": "daily"})
    assert error(response) == (
        400,
        "parameter verification failed - 'prune-schedule': datastore prune settings have been replaced by prune jobs",
    )


# --- tasks, certificates, version ---------------------------------------------------------------


def test_task_status_of_unknown_upids_and_of_other_users_tasks(pbs: Pbs) -> None:
    unknown = "UPID:localhost:00001234:00005678:00000099:65000000:garbage_collection:store1:root@pam:"
    task = pbs.ok("GET", f"/nodes/localhost/tasks/{unknown}/status")
    assert (task["status"], task["exitstatus"]) == ("stopped", "unknown")
    auth = pbs.user_with_token("acme@pbs")
    upid = pbs.ok("POST", "/admin/datastore/store1/gc")
    assert error(pbs.call("GET", f"/nodes/localhost/tasks/{upid}/status", auth=auth)) == (
        400,
        "task access not allowed",
    )
    response = pbs.call("GET", "/nodes/localhost/tasks/UPID:bad/status")
    assert error(response) == (400, "parameter verification failed - 'upid': value must be at least 36 characters long")


def test_certificate_info_needs_sys_modify_and_reports_the_servers_certificate(pbs: Pbs) -> None:
    fingerprint = ":".join(["ab"] * 32)
    pbs.sim.set_certificate("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", fingerprint)
    info = pbs.ok("GET", "/nodes/localhost/certificates/info")
    assert info[0]["fingerprint"] == fingerprint
    assert info[0]["filename"] == "proxy.pem"
    assert info[0]["pem"].startswith("-----BEGIN CERTIFICATE-----")
    auth = tenant(pbs, "DatastoreAdmin", "/")
    assert error(pbs.call("GET", "/nodes/localhost/certificates/info", auth=auth)) == (403, "permission check failed")


def test_version_is_configurable() -> None:
    harness = Pbs(Simulator(version="3.4", release="7"))
    assert harness.ok("GET", "/version")["version"] == "3.4"
    assert harness.ok("GET", "/version")["release"] == "7"


def test_state_snapshot_and_reset(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    seed(pbs)
    state = pbs.sim.state_snapshot()
    assert "acme@pbs" in [u["userid"] for u in state["users"]]
    assert state["namespaces"]["store1"] == ["clients", "clients/acme"]
    assert state["groups"]["store1"][NS] == {"groups": 1, "snapshots": 1}
    assert len(pbs.sim.request_log) > 0
    pbs.sim.reset()
    assert [u["userid"] for u in pbs.sim.state_snapshot()["users"]] == ["root@pam"]
    assert pbs.sim.request_log == []
    assert pbs.call("GET", "/version").status_code == 401  # the old admin secret is gone
    fresh = pbs.sim.bootstrap_admin_token()
    assert fresh[1] != pbs.admin[1]
