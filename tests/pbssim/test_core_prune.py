"""Prune jobs: /config/prune and /admin/prune (reference section 6)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pbssim.state import Snapshot, compute_prune
from tests.pbssim.core_support import Pbs, error

JOB = {"id": "t-acme", "store": "store1", "ns": "clients/acme", "schedule": "daily", "keep-last": 3}


@pytest.fixture
def pbs() -> Iterator[Pbs]:
    harness = Pbs()
    yield harness
    harness.close()


def tenant(pbs: Pbs, role: str) -> tuple[str, str]:
    """acme@pbs and its token with ``role`` on the tenant namespace."""
    auth = pbs.user_with_token("acme@pbs")
    for auth_id in ("acme@pbs", auth[0]):
        pbs.grant("/datastore/store1/clients/acme", auth_id, role)
    return auth


def test_crud_round_trip_with_digest(pbs: Pbs) -> None:
    pbs.ok("POST", "/config/prune", data={**JOB, "comment": "tenant acme"})
    body = pbs.call("GET", "/config/prune/t-acme").json()
    assert body["data"] == {**JOB, "comment": "tenant acme"}
    pbs.ok(
        "PUT",
        "/config/prune/t-acme",
        data={"keep-daily": 7, "delete": ["keep-last", "comment"], "digest": body["digest"]},
    )
    assert pbs.ok("GET", "/config/prune/t-acme") == {
        **{k: v for k, v in JOB.items() if k != "keep-last"},
        "keep-daily": 7,
    }
    response = pbs.call("PUT", "/config/prune/t-acme", data={"keep-daily": 1, "digest": body["digest"]})
    assert error(response) == (400, "detected modified configuration - file changed by other user? Try again.")
    assert [job["id"] for job in pbs.ok("GET", "/config/prune")] == ["t-acme"]
    pbs.ok("DELETE", "/config/prune/t-acme")
    assert pbs.ok("GET", "/config/prune") == []


def test_keep_options_are_at_least_1_and_max_depth_0_to_7(pbs: Pbs) -> None:
    for field, value, reason in (
        ("keep-weekly", 0, "value must have a minimum value of 1 (got 0)"),
        ("max-depth", 8, "value must have a maximum value of 7 (got 8)"),
        ("max-depth", -1, "value must have a minimum value of 0 (got -1)"),
    ):
        response = pbs.call("POST", "/config/prune", data={**JOB, field: value})
        assert error(response) == (400, f"parameter verification failed - '{field}': {reason}")
    pbs.ok("POST", "/config/prune", data={**JOB, "max-depth": 0})


def test_create_needs_modify_on_the_job_path_and_says_so_with_400(pbs: Pbs) -> None:
    auth = tenant(pbs, "DatastoreReader")
    response = pbs.call("POST", "/config/prune", auth=auth, data=JOB)
    assert error(response) == (400, "missing permissions 'Datastore.Modify' on '/datastore/store1/clients/acme'")
    # Store and namespace are not checked for existence.
    pbs.ok("POST", "/config/prune", data={**JOB, "id": "ghost", "store": "nostore", "ns": "no/such"})


def test_reading_needs_audit_and_listing_filters_by_audit_or_modify(pbs: Pbs) -> None:
    pbs.ok("POST", "/config/prune", data=JOB)
    pbs.ok("POST", "/config/prune", data={**JOB, "id": "t-other", "ns": "clients/other"})
    auth = tenant(pbs, "DatastoreBackup")
    response = pbs.call("GET", "/config/prune/t-acme", auth=auth)
    assert error(response) == (400, "missing permissions 'Datastore.Audit' on '/datastore/store1/clients/acme'")
    assert pbs.ok("GET", "/config/prune", auth=auth) == []
    for auth_id in ("acme@pbs", auth[0]):
        pbs.grant("/datastore/store1/clients/acme", auth_id, "DatastoreAudit")
    assert [job["id"] for job in pbs.ok("GET", "/config/prune", auth=auth)] == ["t-acme"]


def test_update_rechecks_privileges_on_a_new_path(pbs: Pbs) -> None:
    pbs.ok("POST", "/config/prune", data=JOB)
    auth = tenant(pbs, "DatastoreAdmin")
    pbs.ok("PUT", "/config/prune/t-acme", auth=auth, data={"keep-last": 5})
    response = pbs.call("PUT", "/config/prune/t-acme", auth=auth, data={"ns": "clients/other"})
    assert error(response) == (400, "missing permissions 'Datastore.Modify' on '/datastore/store1/clients/other'")


def test_unknown_ids_are_400_no_such_prune(pbs: Pbs) -> None:
    for method in ("GET", "PUT", "DELETE"):
        assert error(pbs.call(method, "/config/prune/nope")) == (400, "no such prune 'nope'")


def test_admin_prune_lists_jobs_with_schedule_status_and_runs_them(pbs: Pbs) -> None:
    pbs.ok("POST", "/config/prune", data={**JOB, "keep-last": 2})
    pbs.ok("POST", "/config/prune", data={**JOB, "id": "t-off", "disable": 1})
    status = {job["id"]: job for job in pbs.ok("GET", "/admin/prune", params={"store": "store1"})}
    assert "next-run" in status["t-acme"]
    assert "next-run" not in status["t-off"]
    for day in range(5):
        pbs.sim.seed_snapshot(
            store="store1",
            ns="clients/acme",
            backup_type="vm",
            backup_id="100",
            backup_time=1_700_000_000 + day * 86400,
            size=100,
        )
    upid = pbs.ok("POST", "/admin/prune/t-acme/run")
    task = pbs.ok("GET", f"/nodes/localhost/tasks/{upid}/status")
    assert (task["status"], task["exitstatus"]) == ("stopped", "OK")
    times = [
        s["backup-time"] for s in pbs.ok("GET", "/admin/datastore/store1/snapshots", params={"ns": "clients/acme"})
    ]
    assert times == [1_700_000_000 + 3 * 86400, 1_700_000_000 + 4 * 86400]
    ran = {job["id"]: job for job in pbs.ok("GET", "/admin/prune")}["t-acme"]
    assert ran["last-run-upid"] == upid
    assert ran["last-run-state"] == "ok"


def test_running_a_job_needs_modify(pbs: Pbs) -> None:
    pbs.ok("POST", "/config/prune", data=JOB)
    auth = tenant(pbs, "DatastoreReader")
    response = pbs.call("POST", "/admin/prune/t-acme/run", auth=auth)
    assert error(response) == (400, "missing permissions 'Datastore.Modify' on '/datastore/store1/clients/acme'")


def test_prune_selection_follows_pbs_rules() -> None:
    day = 86400
    base = 1_704_067_200  # 2024-01-01 00:00 UTC
    snaps = [Snapshot(base + i * day + 3600 * h, []) for i in range(10) for h in (1, 13)]
    marks = compute_prune(snaps, {"keep-last": 2, "keep-daily": 3})
    kept = sorted(t for t, mark in marks.items() if mark == "keep")
    # the two newest, then one per day for the three days before
    assert kept == [
        base + 6 * day + 13 * 3600,
        base + 7 * day + 13 * 3600,
        base + 8 * day + 13 * 3600,
        base + 9 * day + 3600,
        base + 9 * day + 13 * 3600,
    ]
    assert compute_prune(snaps, {}) == dict.fromkeys(marks, "keep")
    protected = [Snapshot(base, [], protected=True), Snapshot(base + day, [])]
    assert compute_prune(protected, {"keep-last": 1}) == {base + day: "keep", base: "protected"}
