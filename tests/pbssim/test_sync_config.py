"""The simulator's /config/remote, /config/sync and /admin/sync: PBS's codes and texts
(pbs-api 9.4, 11)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pbssim.endpoints.sync import link_remote, next_event

FP = ":".join(["ab"] * 32)


def _client(sim, token_id: str, secret: str) -> httpx.Client:
    return httpx.Client(
        base_url="https://sim.invalid:8007/api2/json",
        transport=sim.transport(),
        headers={"Authorization": f"PBSAPIToken={token_id}:{secret}"},
    )


@pytest.fixture
def api(pbs_sim, pbs_admin_token) -> Iterator[httpx.Client]:
    with _client(pbs_sim, *pbs_admin_token) as client:
        yield client


def _remote(api: httpx.Client, name: str = "pbs1", **extra) -> httpx.Response:
    body = {
        "name": name,
        "host": "pbs1.example.net",
        "auth-id": "sync@pbs!pull",
        "password": "the-secret-value",
        "fingerprint": FP,
        **extra,
    }
    return api.post("/config/remote", json=body)


def _job(api: httpx.Client, job_id: str = "job1", **extra) -> httpx.Response:
    body = {"id": job_id, "store": "store1", "remote": "pbs1", "remote-store": "store1", **extra}
    return api.post("/config/sync", json=body)


def _user_token(api: httpx.Client, userid: str, name: str, acls: list[tuple[str, str]]) -> str:
    assert api.post("/access/users", json={"userid": userid}).status_code == 200
    secret = api.post(f"/access/users/{userid}/token/{name}", json={}).json()["data"]["value"]
    for path, role in acls:
        for auth_id in (userid, f"{userid}!{name}"):
            reply = api.put("/access/acl", json={"path": path, "role": role, "auth-id": auth_id})
            assert reply.status_code == 200, reply.text
    return secret


def _grant(api: httpx.Client, path: str, role: str, auth_id: str) -> None:
    reply = api.put("/access/acl", json={"path": path, "role": role, "auth-id": auth_id})
    assert reply.status_code == 200, reply.text


# --- remotes -----------------------------------------------------------------------------


def test_remote_create_read_list_never_return_the_password(api):
    assert _remote(api, port=8007, comment="offsite").status_code == 200
    one = api.get("/config/remote/pbs1").json()
    assert one["data"] == {
        "name": "pbs1",
        "host": "pbs1.example.net",
        "port": 8007,
        "auth-id": "sync@pbs!pull",
        "fingerprint": FP,
        "comment": "offsite",
    }
    assert len(one["digest"]) == 64
    listed = api.get("/config/remote").json()
    assert [r["name"] for r in listed["data"]] == ["pbs1"]
    assert "the-secret-value" not in api.get("/config/remote").text
    assert "password" not in listed["data"][0]


def test_remote_duplicate_unknown_and_delete_texts_match_pbs(api):
    assert _remote(api).status_code == 200
    dup = _remote(api)
    assert (dup.status_code, dup.text) == (
        400,
        "parameter verification failed - 'name': remote 'pbs1' already exists.",
    )
    missing = api.get("/config/remote/nope")
    assert (missing.status_code, missing.text) == (400, "no such remote 'nope'")
    put_missing = api.put("/config/remote/nope", json={"comment": "x"})
    assert (put_missing.status_code, put_missing.text) == (400, "no such remote 'nope'")
    gone = api.delete("/config/remote/nope")
    assert (gone.status_code, gone.text) == (404, "remote 'nope' does not exist.")
    assert api.delete("/config/remote/pbs1").status_code == 200
    assert api.get("/config/remote").json()["data"] == []


def test_a_remote_in_use_by_a_sync_job_cannot_be_deleted(api):
    _remote(api)
    assert _job(api).status_code == 200
    refused = api.delete("/config/remote/pbs1")
    assert refused.status_code == 400
    assert refused.text == (
        "parameter verification failed - 'name': remote 'pbs1' is used by sync job 'job1' "
        "(datastore 'store1')"
    )


def test_remote_update_deletes_and_digest_guard(api):
    _remote(api, port=8007, comment="c")
    digest = api.get("/config/remote/pbs1").json()["digest"]
    ok = api.put("/config/remote/pbs1", json={"delete": ["port", "comment"], "digest": digest})
    assert ok.status_code == 200
    assert api.get("/config/remote/pbs1").json()["data"].keys() == {"name", "host", "auth-id", "fingerprint"}
    stale = api.put("/config/remote/pbs1", json={"comment": "x", "digest": digest})
    assert stale.status_code == 400
    assert stale.text == "detected modified configuration - file changed by other user? Try again."


def test_remote_parameters_are_validated(api):
    bad = _remote(api, name="x", fingerprint="zz")
    assert bad.status_code == 400
    assert bad.text.startswith("parameter verification failed:")
    assert "- 'fingerprint': value does not match the regex pattern" in bad.text
    assert "- 'name': value must be at least 3 characters long" in bad.text


# --- sync jobs ------------------------------------------------------------------------------


def test_sync_job_stored_forms_follow_pbs(api):
    _remote(api)
    reply = _job(
        api,
        **{"group-filter": ["include:type:vm", "exclude:group:vm/100"], "rate-in": "10MiB",
           "schedule": "hourly", "remove-vanished": True, "transfer-last": 3},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    job = api.get("/config/sync/job1").json()["data"]
    assert job["group-filter"] == ["type:vm", "exclude:group:vm/100"]
    assert job["rate-in"] == "10 MiB"
    assert job["remove-vanished"] is True
    assert job["transfer-last"] == 3


def test_sync_job_duplicate_unknown_and_delete_texts_match_pbs(api):
    _remote(api)
    assert _job(api).status_code == 200
    dup = _job(api)
    assert (dup.status_code, dup.text) == (
        400,
        "parameter verification failed - 'id': job 'job1' already exists.",
    )
    unknown = api.get("/config/sync/nojob")
    assert (unknown.status_code, unknown.text) == (400, "no such sync 'nojob'")
    gone = api.delete("/config/sync/nojob")
    assert (gone.status_code, gone.text) == (404, "job 'nojob' does not exist.")
    run = api.post("/admin/sync/nojob/run")
    assert (run.status_code, run.text) == (400, "no such sync 'nojob'")


def test_sync_job_bad_schedule_and_filter_are_parameter_errors(api):
    bad = _job(api, schedule="every day")
    assert bad.status_code == 400
    assert bad.text.startswith("parameter verification failed - 'schedule': unable to parse calendar event")
    bad_filter = _job(api, **{"group-filter": ["type:lxc"]})
    assert bad_filter.status_code == 400
    assert "unable to parse backup type 'lxc'" in bad_filter.text


def test_max_depth_plus_namespace_depth_may_not_exceed_seven(api):
    bad = _job(api, ns="a/b/c", **{"max-depth": 5})
    assert bad.status_code == 400
    assert bad.text == "namespace 'a/b/c's depth and recursion depth exceed limit: 3 + 5 > 7"


def test_sync_direction_filters_the_listing(api):
    _remote(api)
    _job(api, "pulljob")
    pushed = api.post(
        "/config/sync",
        json={"id": "pushjob", "store": "store1", "remote": "pbs1", "remote-store": "store9",
              "sync-direction": "push"},
    )  # fmt: skip
    assert pushed.status_code == 200, pushed.text
    assert [j["id"] for j in api.get("/config/sync").json()["data"]] == ["pulljob"]
    assert [j["id"] for j in api.get("/config/sync", params={"sync-direction": "push"}).json()["data"]] == [
        "pushjob"
    ]
    every = api.get("/config/sync", params={"sync-direction": "all"}).json()["data"]
    assert sorted(j["id"] for j in every) == ["pulljob", "pushjob"]


def test_sync_job_update_deletes_options(api):
    _remote(api)
    _job(api, schedule="daily", comment="c")
    reply = api.put("/config/sync/job1", json={"delete": ["schedule", "comment"], "max-depth": 2})
    assert reply.status_code == 200, reply.text
    job = api.get("/config/sync/job1").json()["data"]
    assert "schedule" not in job
    assert "comment" not in job
    assert job["max-depth"] == 2


# --- privileges (pbs-api 11.3) -----------------------------------------------------------------


def test_pull_job_privileges_are_checked_like_pbs(pbs_sim, pbs_sim_factory, api):
    link_remote(pbs_sim, "pbs1.example.net:8007", pbs_sim_factory())  # no network in tests
    _remote(api)
    secret = _user_token(
        api,
        "op@pbs",
        "t",
        [("/datastore/store1", "DatastoreBackup"), ("/datastore/store1", "DatastoreAudit")],
    )
    with _client(pbs_sim, "op@pbs!t", secret) as op:
        # No Remote.Read on /remote/pbs1/store1 and no Modify for the root@pam owner.
        denied = _job(op, owner="op@pbs!t")
        assert (denied.status_code, denied.text) == (400, "permission check failed")
        # Remote.Read deeper (on a remote namespace path) does not count.
        for auth_id in ("op@pbs", "op@pbs!t"):
            _grant(api, "/remote/pbs1/store1/ns", "RemoteSyncOperator", auth_id)
        assert _job(op, owner="op@pbs!t").status_code == 400
        for auth_id in ("op@pbs", "op@pbs!t"):
            _grant(api, "/remote/pbs1/store1", "RemoteSyncOperator", auth_id)
        # Owner unset means root@pam: needs Datastore.Modify.
        assert _job(op).text == "permission check failed"
        # remove-vanished needs Datastore.Prune.
        assert _job(op, owner="op@pbs!t", **{"remove-vanished": True}).text == "permission check failed"
        ok = _job(op, owner="op@pbs!t")
        assert ok.status_code == 200, ok.text
        assert op.get("/config/sync/job1").status_code == 400  # no Remote.Audit on /remote/pbs1
        run = op.post("/admin/sync/job1/run")
        assert run.status_code == 200  # modify access is what a run needs


def test_running_a_job_without_access_names_the_caller(pbs_sim, api):
    _remote(api)
    _job(api)
    secret = _user_token(api, "nobody@pbs", "t", [])
    with _client(pbs_sim, "nobody@pbs!t", secret) as op:
        run = op.post("/admin/sync/job1/run")
    assert (run.status_code, run.text) == (400, "permission check failed, 'nobody@pbs!t' is missing access")


# --- status -------------------------------------------------------------------------------------


def test_admin_sync_lists_next_run_from_the_schedule(api):
    _remote(api)
    _job(api, schedule="hourly")
    status = api.get("/admin/sync").json()["data"]
    assert len(status) == 1
    assert status[0]["id"] == "job1"
    assert status[0]["next-run"] % 3600 == 0
    assert "last-run-state" not in status[0]


def test_next_event_handles_common_schedules():
    base = 1_700_000_000  # 2023-11-14 22:13:20 UTC
    assert next_event("hourly", base) == 1_700_002_800
    assert next_event("daily", base) == 1_700_006_400
    assert next_event("*:0/15", base) == 1_700_000_100
    assert next_event("not a schedule", base) is None
