"""HTTP semantics of the simulator as the reference documents PBS 4.2.3.

Sections 1.1/1.3 (authentication), 9.1 (envelope), 9.2 (status code table),
9.4 ("already exists" / "not found" table) and 13 (common mistakes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from pbssim.simulator import Simulator
from tests.pbssim.core_support import Pbs, error

JSON_CT = "application/json;charset=UTF-8"
EXPIRED_COOKIE = "__Host-PBSAuthCookie=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; SameSite=Lax; HttpOnly; Path=/;"


@pytest.fixture
def pbs() -> Iterator[Pbs]:
    harness = Pbs()
    yield harness
    harness.close()


def raw(
    sim: Simulator, method: str, path: str, query: str = "", headers: dict[str, str] | None = None, body: bytes = b""
):
    return sim.handle(method, path, query, headers or {}, body)


def admin_headers(pbs: Pbs) -> dict[str, str]:
    return {"Authorization": f"PBSAPIToken={pbs.admin[0]}:{pbs.admin[1]}"}


# --- 1.1 / 1.3: authentication ---------------------------------------------------------


def assert_authentication_failed(reply: tuple[int, dict[str, str], bytes]) -> None:
    status, headers, body = reply
    assert status == 401
    assert body == b"authentication failed"
    assert "Content-Type" not in headers
    assert headers["Set-Cookie"] == EXPIRED_COOKIE


def test_a_valid_token_authenticates_with_equals_or_space_after_the_prefix(pbs: Pbs) -> None:
    tokenid, secret = pbs.admin
    for header in (f"PBSAPIToken={tokenid}:{secret}", f"PBSAPIToken {tokenid}:{secret}"):
        status, headers, body = raw(pbs.sim, "GET", "/api2/json/version", headers={"Authorization": header})
        assert status == 200, body
        assert headers["Content-Type"] == JSON_CT


def test_the_secret_is_percent_decoded_and_split_at_the_first_colon(pbs: Pbs) -> None:
    tokenid, secret = pbs.admin
    encoded = secret.replace("-", "%2D")
    status, _, _ = raw(
        pbs.sim, "GET", "/api2/json/version", headers={"Authorization": f"PBSAPIToken={tokenid}:{encoded}"}
    )
    assert status == 200
    # Everything after the first colon is the secret: a trailing ":x" makes it wrong.
    assert_authentication_failed(
        raw(pbs.sim, "GET", "/api2/json/version", headers={"Authorization": f"PBSAPIToken={tokenid}:{secret}:x"})
    )


@pytest.mark.parametrize(
    "header",
    [
        None,
        "PBSAPIToken=root@pam!nosuch:00000000-0000-0000-0000-000000000000",
        "PBSAPIToken=root@pam!portal:wrong",
        "PBSAPIToken=root@pam!portal",
        "PBSAPIToken=garbage",
        "Bearer abc",
    ],
)
def test_missing_unknown_wrong_or_malformed_credentials_get_the_same_401(pbs: Pbs, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    assert_authentication_failed(raw(pbs.sim, "GET", "/api2/json/version", headers=headers))


def test_a_pve_style_token_header_is_refused(pbs: Pbs) -> None:
    tokenid, secret = pbs.admin
    for header in (
        f"PVEAPIToken={tokenid}={secret}",
        f"PVEAPIToken={tokenid}:{secret}",
        f"PBSAPIToken={tokenid}={secret}",
    ):
        assert_authentication_failed(raw(pbs.sim, "GET", "/api2/json/version", headers={"Authorization": header}))


def test_disabled_or_expired_tokens_and_users_are_refused(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs", "backup")
    headers = {"Authorization": f"PBSAPIToken={auth[0]}:{auth[1]}"}
    assert raw(pbs.sim, "GET", "/api2/json/version", headers=headers)[0] == 200
    cases = [
        ("/access/users/acme@pbs/token/backup", {"enable": 0}, {"enable": 1}),
        ("/access/users/acme@pbs/token/backup", {"expire": int(time.time()) - 10}, {"expire": 0}),
        ("/access/users/acme@pbs", {"enable": 0}, {"enable": 1}),
        ("/access/users/acme@pbs", {"expire": int(time.time()) - 10}, {"expire": 0}),
    ]
    for path, breaking, fixing in cases:
        pbs.ok("PUT", path, data=breaking)
        assert_authentication_failed(raw(pbs.sim, "GET", "/api2/json/version", headers=headers))
        pbs.ok("PUT", path, data=fixing)
        assert raw(pbs.sim, "GET", "/api2/json/version", headers=headers)[0] == 200


def test_unknown_paths_need_authentication_first(pbs: Pbs) -> None:
    assert_authentication_failed(raw(pbs.sim, "GET", "/api2/json/no/such/path"))
    status, headers, body = raw(pbs.sim, "GET", "/api2/json/no/such/path", headers=admin_headers(pbs))
    assert (status, body) == (404, b"Path '/api2/json/no/such/path' not found.")
    assert headers["Content-Type"] == JSON_CT


def test_world_endpoints_need_no_credentials(pbs: Pbs) -> None:
    status, _, body = raw(pbs.sim, "GET", "/api2/json/ping")
    assert (status, json.loads(body)) == (200, {"data": {"pong": True}})
    status, _, body = raw(pbs.sim, "GET", "/api2/json/access/domains")
    assert status == 200
    assert {realm["realm"] for realm in json.loads(body)["data"]} == {"pam", "pbs"}


def test_token_secrets_are_lowercase_uuids_and_never_stored(pbs: Pbs) -> None:
    _tokenid, secret = pbs.user_with_token("acme@pbs", "backup")
    assert len(secret) == 36
    assert secret == secret.lower()
    assert secret.count("-") == 4
    state_text = json.dumps(pbs.sim.state_snapshot())
    assert secret not in state_text
    assert all(
        secret.encode() not in digest and secret.encode() not in salt
        for salt, digest in pbs.sim.state.token_hashes.values()
    )


def test_auth_delays_are_off_by_default_and_configurable() -> None:
    sim = Simulator(auth_delay_s=0.3)
    started = time.monotonic()
    assert raw(sim, "GET", "/api2/json/version")[0] == 401
    assert time.monotonic() - started >= 0.29
    fast = Simulator()
    started = time.monotonic()
    assert raw(fast, "GET", "/api2/json/version")[0] == 401
    assert time.monotonic() - started < 0.2


# --- 1.2: tickets ------------------------------------------------------------------------


def test_ticket_login_gives_a_cookie_ticket_and_csrf_token_for_writes(pbs: Pbs) -> None:
    pbs.sim.set_password("root@pam", "correct horse")
    status, _, body = raw(
        pbs.sim,
        "POST",
        "/api2/json/access/ticket",
        body=b"username=root%40pam&password=correct+horse",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    reply = json.loads(body)
    assert status == 200
    assert reply["status"] == 200
    assert reply["success"] is True
    data = reply["data"]
    assert data["username"] == "root@pam"
    assert data["ticket"].startswith("PBS:root@pam:")
    cookie = {"Cookie": f"PBSAuthCookie={data['ticket']}"}
    assert raw(pbs.sim, "GET", "/api2/json/access/users", headers=cookie)[0] == 200
    # Writes need the CSRF token too; without it the answer is the plain 401.
    assert_authentication_failed(raw(pbs.sim, "POST", "/api2/json/access/users", "userid=x%40pbs", headers=cookie))
    headers = {**cookie, "CSRFPreventionToken": data["CSRFPreventionToken"]}
    assert raw(pbs.sim, "POST", "/api2/json/access/users", "userid=x%40pbs", headers=headers)[0] == 200
    # The ticket is not accepted in the Authorization header.
    assert_authentication_failed(raw(pbs.sim, "GET", "/api2/json/version", headers={"Authorization": data["ticket"]}))


def test_a_failed_login_is_a_401_with_its_own_text(pbs: Pbs) -> None:
    pbs.sim.set_password("root@pam", "correct horse")
    for body in (b"username=root%40pam&password=wrong", b"username=nobody%40pbs&password=whatever"):
        status, _, text = raw(
            pbs.sim,
            "POST",
            "/api2/json/access/ticket",
            body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (status, text) == (401, b"permission check failed.")
    status, _, text = raw(pbs.sim, "POST", "/api2/json/access/ticket", "username=root%40pam")
    assert (status, text) == (400, b"no password provided")


# --- 9.1: envelope ------------------------------------------------------------------------


def test_success_is_data_plus_a_digest_for_config_reads(pbs: Pbs) -> None:
    body = pbs.call("GET", "/access/users").json()
    assert set(body) == {"data", "digest"}
    assert len(body["digest"]) == 64
    assert pbs.call("POST", "/access/users", data={"userid": "a@pbs"}).json() == {"data": None}
    # The digest changes when the configuration is saved.
    assert pbs.call("GET", "/access/users").json()["digest"] != body["digest"]


def test_extjs_envelope_always_answers_200_with_success_and_errors(pbs: Pbs) -> None:
    client = pbs.client(pbs.admin, base_url="https://pbs.test:8007/api2/extjs")
    ok = client.get("/version")
    assert ok.status_code == 200
    assert ok.json()["success"] is True
    bad = client.post("/access/users", data={"userid": "x"})
    assert bad.status_code == 200
    assert bad.json()["success"] is False
    assert bad.json()["status"] == 400
    assert bad.json()["message"] == "parameter verification errors"
    assert bad.json()["errors"] == {"userid": "value must be at least 3 characters long"}
    # ... except for the authentication failure, which stays a plain 401.
    assert pbs.client(None, base_url="https://pbs.test:8007/api2/extjs").get("/version").status_code == 401


# --- 9.2: status code table ---------------------------------------------------------------


def test_route_level_permission_failure_is_403(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    for method, path in (
        ("POST", "/access/users"),
        ("GET", "/admin/datastore/store1/gc"),
        ("GET", "/nodes/localhost/certificates/info"),
    ):
        assert error(pbs.call(method, path, auth=auth, data={"userid": "x@pbs"})) == (403, "permission check failed")


def test_namespace_privilege_failure_inside_a_handler_is_403_naming_the_privileges(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    response = pbs.call("GET", "/admin/datastore/store1/groups", auth=auth, params={"ns": "acme"})
    assert error(response) == (
        403,
        "permission check failed - missing Datastore.Audit|Datastore.Backup on /datastore/store1/acme",
    )


def test_check_privs_failure_is_400_missing_permissions(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    response = pbs.call(
        "POST", "/config/prune", auth=auth, data={"id": "t-acme", "store": "store1", "ns": "acme", "schedule": "daily"}
    )
    assert error(response) == (400, "missing permissions 'Datastore.Modify' on '/datastore/store1/acme'")


def test_sync_job_access_failure_is_400_permission_check_failed(pbs: Pbs) -> None:
    pbs.ok(
        "POST",
        "/config/remote",
        data={"name": "rem1", "host": "192.0.2.10", "auth-id": "sync@pbs!pull", "password": "x"},
    )
    auth = pbs.user_with_token("acme@pbs")
    job = {"id": "job1", "store": "store1", "remote": "rem1", "remote-store": "store1"}
    assert error(pbs.call("POST", "/config/sync", auth=auth, data=job)) == (400, "permission check failed")


def test_unknown_path_or_method_is_404(pbs: Pbs) -> None:
    assert error(pbs.call("PUT", "/admin/datastore/store1")) == (
        404,
        "Path '/api2/json/admin/datastore/store1' not found.",
    )
    assert error(pbs.call("PATCH", "/access/users")) == (404, "Path '/api2/json/access/users' not found.")


def test_unknown_output_format_is_400(pbs: Pbs) -> None:
    status, _headers, body = raw(pbs.sim, "GET", "/api2/xml/version", headers=admin_headers(pbs))
    assert (status, body) == (400, b"Unsupported output format 'xml'.")


def test_unsupported_body_content_type_is_400(pbs: Pbs) -> None:
    response = pbs.call("POST", "/access/users", content=b"userid=x@pbs", headers={"Content-Type": "text/plain"})
    assert error(response) == (400, 'unsupported content type Ok("text/plain")')


def test_a_body_of_512_kib_or_more_is_too_large(pbs: Pbs) -> None:
    response = pbs.call(
        "POST",
        "/access/users",
        content=b"a" * (512 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error(response) == (400, "Request body too large")


def test_path_and_query_over_3072_bytes_is_414_with_an_empty_body(pbs: Pbs) -> None:
    status, _, body = raw(pbs.sim, "GET", "/api2/json/access/users", "x=" + "a" * 3100, admin_headers(pbs))
    assert (status, body) == (414, b"")


def test_a_path_component_starting_with_a_dot_is_400(pbs: Pbs) -> None:
    for path in ("/api2/json/access/.hidden", "/api2/json/access/users/.x@pbs", "/api2/json/../json/version"):
        status, headers, body = raw(pbs.sim, "GET", path, headers=admin_headers(pbs))
        assert (status, body) == (400, b"path contains illegal components")
        assert headers["Content-Type"] == JSON_CT


def test_a_stale_digest_is_refused(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    digest = pbs.call("GET", "/access/users/acme@pbs").json()["digest"]
    pbs.user("other@pbs")
    response = pbs.call("PUT", "/access/users/acme@pbs", data={"comment": "x", "digest": digest})
    assert error(response) == (400, "detected modified configuration - file changed by other user? Try again.")
    fresh = pbs.call("GET", "/access/users/acme@pbs").json()["digest"]
    assert pbs.call("PUT", "/access/users/acme@pbs", data={"comment": "x", "digest": fresh}).status_code == 200


def test_errors_are_plain_text_with_a_json_content_type(pbs: Pbs) -> None:
    response = pbs.call("GET", "/access/users/nobody@pbs")
    assert response.headers["content-type"] == JSON_CT
    assert response.text == "no such user 'nobody@pbs'"
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


# --- 9.4: "already exists" and "not found" ------------------------------------------------


def test_already_exists_is_400_and_never_409(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.token("acme@pbs", "t")
    pbs.ok("POST", "/config/prune", data={"id": "job1", "store": "store1", "schedule": "daily"})
    cases = [
        ("POST", "/access/users", {"userid": "acme@pbs"}, "user 'acme@pbs' already exists."),
        ("POST", "/access/users/acme@pbs/token/t", {}, "token 't' for user 'acme@pbs' already exists."),
        (
            "POST",
            "/config/prune",
            {"id": "job1", "store": "store1", "schedule": "daily"},
            "parameter verification failed - 'id': job 'job1' already exists.",
        ),
        (
            "POST",
            "/config/datastore",
            {"name": "store1", "path": "/mnt/store1"},
            "parameter verification failed - 'name': datastore 'store1' already exists.",
        ),
    ]
    for method, path, data, text in cases:
        assert error(pbs.call(method, path, data=data)) == (400, text)


def test_already_exists_for_remotes_and_sync_jobs_is_400(pbs: Pbs) -> None:
    remote = {"name": "rem1", "host": "192.0.2.10", "auth-id": "sync@pbs!pull", "password": "secret"}
    pbs.ok("POST", "/config/remote", data=remote)
    assert error(pbs.call("POST", "/config/remote", data=remote)) == (
        400,
        "parameter verification failed - 'name': remote 'rem1' already exists.",
    )
    job = {"id": "job1", "store": "store1", "remote": "rem1", "remote-store": "store1"}
    pbs.ok("POST", "/config/sync", data=job)
    assert error(pbs.call("POST", "/config/sync", data=job)) == (
        400,
        "parameter verification failed - 'id': job 'job1' already exists.",
    )


def test_namespace_create_and_acl_set_are_idempotent_200s(pbs: Pbs) -> None:
    for _ in range(2):
        assert pbs.call("POST", "/admin/datastore/store1/namespace", data={"name": "acme"}).json() == {"data": "acme"}
    pbs.user("acme@pbs")
    for _ in range(2):
        response = pbs.call(
            "PUT",
            "/access/acl",
            data={"path": "/datastore/store1/acme", "role": "DatastoreBackup", "auth-id": "acme@pbs"},
        )
        assert response.json() == {"data": None}


def test_not_found_texts_and_codes(pbs: Pbs) -> None:
    cases = [
        ("GET", "/access/users/u@pbs", 400, "no such user 'u@pbs'"),
        ("PUT", "/access/users/u@pbs", 400, "no such user 'u@pbs'"),
        ("DELETE", "/access/users/u@pbs", 400, "user 'u@pbs' does not exist."),
        ("GET", "/access/users/u@pbs/token/t", 400, "no such token 'u@pbs!t'"),
        ("PUT", "/access/users/u@pbs/token/t", 400, "no such token 'u@pbs!t'"),
        ("DELETE", "/access/users/u@pbs/token/t", 400, "token 't' of user 'u@pbs' does not exist."),
        ("GET", "/config/prune/nope", 400, "no such prune 'nope'"),
        ("PUT", "/config/prune/nope", 400, "no such prune 'nope'"),
        ("DELETE", "/config/prune/nope", 400, "no such prune 'nope'"),
        ("DELETE", "/config/datastore/nope", 404, "datastore 'nope' does not exist."),
        ("GET", "/config/datastore/nope", 400, "no such datastore 'nope'"),
        ("GET", "/admin/datastore/nope/snapshots", 400, "no such datastore 'nope'"),
    ]
    for method, path, status, text in cases:
        assert error(pbs.call(method, path)) == (status, text), (method, path)


def test_not_found_for_remotes_and_sync_jobs(pbs: Pbs) -> None:
    assert error(pbs.call("GET", "/config/remote/rem1")) == (400, "no such remote 'rem1'")
    assert error(pbs.call("DELETE", "/config/remote/rem1")) == (404, "remote 'rem1' does not exist.")
    assert error(pbs.call("DELETE", "/config/sync/job1")) == (404, "job 'job1' does not exist.")


def test_unknown_datastore_is_403_before_400_without_rights(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    assert pbs.call("GET", "/admin/datastore/nope/snapshots", auth=auth).status_code == 403
    assert pbs.call("GET", "/admin/datastore/nope/status", auth=auth).status_code == 403


# --- 13: common mistakes --------------------------------------------------------------------


def test_acl_with_userid_is_refused_in_both_input_forms(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    form = {"path": "/datastore/store1", "role": "DatastoreBackup", "userid": "acme@pbs"}
    assert error(pbs.call("PUT", "/access/acl", data=form)) == (
        400,
        "parameter verification failed - 'userid': schema does not allow additional properties.",
    )
    assert error(pbs.call("PUT", "/access/acl", json=form)) == (
        400,
        "parameter verification failed - 'userid': schema does not allow additional properties",
    )


def test_per_namespace_retention_on_datastore_paths_is_refused(pbs: Pbs) -> None:
    response = pbs.call("PUT", "/admin/datastore/store1", data={"ns": "acme", "keep-last": 3})
    assert error(response) == (404, "Path '/api2/json/admin/datastore/store1' not found.")
    response = pbs.call("PUT", "/config/datastore/store1", data={"keep-daily": 7, "keep-last": 3})
    assert error(response) == (
        400,
        "parameter verification failed - 'keep-last': datastore prune settings have been replaced by prune jobs",
    )
    response = pbs.call("PUT", "/config/datastore/store1", data={"ns": "acme"})
    assert error(response) == (
        400,
        "parameter verification failed - 'ns': schema does not allow additional properties.",
    )
    # Cleaning up old settings is still allowed.
    assert (
        pbs.call("PUT", "/config/datastore/store1", data={"delete": ["keep-last", "prune-schedule"]}).status_code == 200
    )


def test_status_has_no_namespace_parameter(pbs: Pbs) -> None:
    response = pbs.call("GET", "/admin/datastore/store1/status", params={"ns": "acme"})
    assert error(response) == (
        400,
        "parameter verification failed - 'ns': schema does not allow additional properties.",
    )


def test_retention_per_namespace_is_a_prune_job(pbs: Pbs) -> None:
    data = {
        "id": "t-acme",
        "store": "store1",
        "ns": "clients/acme",
        "schedule": "daily",
        "keep-daily": 7,
        "max-depth": 7,
    }
    pbs.ok("POST", "/config/prune", data=data)
    job = pbs.ok("GET", "/config/prune/t-acme")
    assert job == {
        "id": "t-acme",
        "store": "store1",
        "schedule": "daily",
        "ns": "clients/acme",
        "max-depth": 7,
        "keep-daily": 7,
    }
