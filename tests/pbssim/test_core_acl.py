"""ACL endpoints, ACL paths, roles and PBS's role resolution (reference section 4)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pbssim.acl import check_acl_path
from tests.pbssim.core_support import Pbs, error, ticket_login

NS = "/datastore/store1/acme"


@pytest.fixture
def pbs() -> Iterator[Pbs]:
    harness = Pbs()
    yield harness
    harness.close()


def privs(pbs: Pbs, auth_id: str, path: str) -> dict[str, bool]:
    """{privilege: propagate} of ``auth_id`` on ``path``, via /access/permissions."""
    data = pbs.ok("GET", "/access/permissions", params={"auth-id": auth_id, "path": path})
    return data.get(path, {})


# --- 4.4: resolution ---------------------------------------------------------------------------


def test_a_deeper_node_replaces_the_roles_from_above(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant(NS, "acme@pbs", "DatastoreAdmin")
    pbs.grant(f"{NS}/sub", "acme@pbs", "DatastoreAudit")
    assert set(privs(pbs, "acme@pbs", f"{NS}/sub")) == {"Datastore.Audit"}
    assert set(privs(pbs, "acme@pbs", f"{NS}/sub/deeper")) == {"Datastore.Audit"}
    assert "Datastore.Modify" in privs(pbs, "acme@pbs", f"{NS}/other")


def test_roles_on_one_node_are_combined(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant(NS, "acme@pbs", "DatastorePowerUser")
    pbs.grant(NS, "acme@pbs", "DatastoreReader")
    assert set(privs(pbs, "acme@pbs", NS)) == {
        "Datastore.Audit",
        "Datastore.Read",
        "Datastore.Verify",
        "Datastore.Backup",
        "Datastore.Prune",
    }


def test_no_access_wipes_the_node(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant("/datastore/store1", "acme@pbs", "DatastoreAdmin")
    pbs.grant(NS, "acme@pbs", "DatastoreReader")
    pbs.grant(NS, "acme@pbs", "NoAccess")
    assert privs(pbs, "acme@pbs", NS) == {}
    assert privs(pbs, "acme@pbs", f"{NS}/below") == {}
    # Adding NoAccess removed the other role on that node; adding a role removes NoAccess.
    entries = pbs.ok("GET", "/access/acl", params={"path": NS, "exact": 1})
    assert [(e["ugid"], e["roleid"]) for e in entries] == [("acme@pbs", "NoAccess")]
    pbs.grant(NS, "acme@pbs", "DatastoreAudit")
    entries = pbs.ok("GET", "/access/acl", params={"path": NS, "exact": 1})
    assert [(e["ugid"], e["roleid"]) for e in entries] == [("acme@pbs", "DatastoreAudit")]


def test_propagate_0_applies_only_to_the_exact_path(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant(NS, "acme@pbs", "DatastoreAudit", propagate=False)
    assert privs(pbs, "acme@pbs", NS) == {"Datastore.Audit": False}
    assert privs(pbs, "acme@pbs", f"{NS}/child") == {}


def test_a_token_gets_the_and_of_its_own_and_its_users_rights(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.token("acme@pbs", "restore")
    pbs.grant(NS, "acme@pbs!restore", "DatastoreReader")
    # The user has only Backup: the restore token gets nothing.
    pbs.grant(NS, "acme@pbs", "DatastoreBackup")
    assert privs(pbs, "acme@pbs!restore", NS) == {}
    # With Reader next to Backup on the user, the token can read.
    pbs.grant(NS, "acme@pbs", "DatastoreReader")
    assert set(privs(pbs, "acme@pbs!restore", NS)) == {"Datastore.Audit", "Datastore.Verify", "Datastore.Read"}


def test_a_token_s_propagate_bits_are_anded_with_the_users(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.token("acme@pbs", "t")
    pbs.grant(NS, "acme@pbs", "DatastoreAdmin", propagate=False)
    pbs.grant(NS, "acme@pbs!t", "DatastoreBackup", propagate=True)
    assert privs(pbs, "acme@pbs!t", NS) == {"Datastore.Backup": False}
    assert privs(pbs, "acme@pbs!t", f"{NS}/child") == {}


def test_root_is_superuser_but_its_tokens_are_not(pbs: Pbs) -> None:
    root = pbs.ok("GET", "/access/permissions", params={"auth-id": "root@pam", "path": "/datastore/x"})
    assert len(root["/datastore/x"]) == 23
    token = pbs.token("root@pam", "plain")
    assert privs(pbs, token[0], "/") == {}
    assert pbs.call("GET", "/version", auth=token).status_code == 200
    assert pbs.call("POST", "/access/users", auth=token, data={"userid": "x@pbs"}).status_code == 403
    # With its own ACL entry it gets what the ACL gives (root's rights are all).
    pbs.grant("/access/users", token[0], "Admin")
    assert pbs.call("POST", "/access/users", auth=token, data={"userid": "x@pbs"}).status_code == 200


def test_acl_changes_take_effect_at_once(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    pbs.namespace("store1", "acme")
    assert pbs.call("GET", "/admin/datastore/store1/snapshots", auth=auth, params={"ns": "acme"}).status_code == 403
    pbs.grant(NS, "acme@pbs", "DatastoreAudit")
    pbs.grant(NS, auth[0], "DatastoreAudit")
    assert pbs.call("GET", "/admin/datastore/store1/snapshots", auth=auth, params={"ns": "acme"}).status_code == 200
    pbs.ok("PUT", "/access/acl", data={"path": NS, "role": "DatastoreAudit", "auth-id": "acme@pbs", "delete": 1})
    assert pbs.call("GET", "/admin/datastore/store1/snapshots", auth=auth, params={"ns": "acme"}).status_code == 403


def test_tenant_stop_writes_keeps_restores(pbs: Pbs) -> None:
    """The portal's suspend recipe: drop PowerUser/Backup, keep Reader."""
    pbs.user("acme@pbs")
    backup = pbs.token("acme@pbs", "backup")
    pbs.grant(NS, "acme@pbs", "DatastorePowerUser")
    pbs.grant(NS, "acme@pbs", "DatastoreReader")
    pbs.grant(NS, backup[0], "DatastoreBackup")
    assert "Datastore.Backup" in privs(pbs, backup[0], NS)
    for path, auth_id, role in ((NS, "acme@pbs", "DatastorePowerUser"), (NS, backup[0], "DatastoreBackup")):
        pbs.ok("PUT", "/access/acl", data={"path": path, "auth-id": auth_id, "role": role, "delete": 1})
    assert privs(pbs, backup[0], NS) == {}
    assert set(privs(pbs, "acme@pbs", NS)) == {"Datastore.Audit", "Datastore.Verify", "Datastore.Read"}


# --- 4.3: roles ----------------------------------------------------------------------------------


def test_the_18_roles_have_pbs_privilege_sets(pbs: Pbs) -> None:
    roles = {role["roleid"]: set(role["privs"]) for role in pbs.ok("GET", "/access/roles")}
    assert len(roles) == 18
    assert len(roles["Admin"]) == 23
    assert roles["NoAccess"] == set()
    assert roles["Audit"] == {"Sys.Audit", "Datastore.Audit"}
    assert roles["DatastoreAdmin"] == {
        "Datastore.Audit",
        "Datastore.Modify",
        "Datastore.Read",
        "Datastore.Verify",
        "Datastore.Backup",
        "Datastore.Prune",
    }
    assert roles["DatastoreReader"] == {"Datastore.Audit", "Datastore.Verify", "Datastore.Read"}
    assert roles["DatastoreBackup"] == {"Datastore.Backup"}
    assert roles["DatastorePowerUser"] == {"Datastore.Backup", "Datastore.Prune"}
    assert roles["DatastoreAudit"] == {"Datastore.Audit"}
    assert roles["RemoteAudit"] == {"Remote.Audit"}
    assert roles["RemoteAdmin"] == {"Remote.Audit", "Remote.Modify", "Remote.Read"}
    assert roles["RemoteSyncOperator"] == {"Remote.Audit", "Remote.Read"}
    assert roles["RemoteSyncPushOperator"] == {"Remote.Audit", "Remote.DatastoreBackup"}
    assert roles["RemoteDatastorePowerUser"] == {"Remote.Audit", "Remote.DatastoreBackup", "Remote.DatastorePrune"}
    assert roles["RemoteDatastoreAdmin"] == {
        "Remote.Audit",
        "Remote.DatastoreBackup",
        "Remote.DatastoreModify",
        "Remote.DatastorePrune",
    }
    assert roles["TapeAudit"] == {"Tape.Audit"}
    assert roles["TapeAdmin"] == {"Tape.Audit", "Tape.Modify", "Tape.Read", "Tape.Write"}
    assert roles["TapeOperator"] == {"Tape.Audit", "Tape.Read", "Tape.Write"}
    assert roles["TapeReader"] == {"Tape.Audit", "Tape.Read"}


# --- 4.1: GET/PUT /access/acl ----------------------------------------------------------------------


def test_acl_list_entries_use_ugid_type_and_carry_a_digest(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant(NS, "acme@pbs", "DatastoreBackup", propagate=False)
    body = pbs.call("GET", "/access/acl", params={"path": NS, "exact": 1}).json()
    assert body["data"] == [
        {"path": NS, "ugid": "acme@pbs", "ugid_type": "user", "propagate": False, "roleid": "DatastoreBackup"}
    ]
    assert len(body["digest"]) == 64


def test_acl_list_exact_and_path_filters(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant("/datastore/store1", "acme@pbs", "DatastoreAudit")
    pbs.grant(NS, "acme@pbs", "DatastoreBackup")
    below = pbs.ok("GET", "/access/acl", params={"path": "/datastore/store1"})
    assert {e["path"] for e in below} == {"/datastore/store1", NS}
    exact = pbs.ok("GET", "/access/acl", params={"path": "/datastore/store1", "exact": 1})
    assert {e["path"] for e in exact} == {"/datastore/store1"}
    assert pbs.ok("GET", "/access/acl", params={"path": "/datastore/nothing"}) == []


def test_without_sys_audit_only_entries_of_own_tokens_are_visible(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    token = pbs.token("acme@pbs", "backup")
    pbs.grant(NS, "acme@pbs", "DatastoreBackup")
    pbs.grant(NS, token[0], "DatastoreBackup")
    pbs.user("other@pbs")
    pbs.grant("/datastore/store1/other", "other@pbs", "DatastoreBackup")
    headers = ticket_login(pbs, "acme@pbs")
    user_view = pbs.client().get("/access/acl", headers=headers).json()["data"]
    assert [e["ugid"] for e in user_view] == [token[0]]
    # A token has no tokens: it sees nothing.
    assert pbs.ok("GET", "/access/acl", auth=token) == []
    # Sys.Audit on /access/acl sees everything.
    pbs.grant("/access/acl", "acme@pbs", "Audit")
    pbs.grant("/access/acl", token[0], "Audit")
    assert len(pbs.ok("GET", "/access/acl", auth=token)) == len(pbs.ok("GET", "/access/acl"))


def test_acl_put_errors(pbs: Pbs) -> None:
    base = {"path": NS, "role": "DatastoreBackup"}
    assert error(pbs.call("PUT", "/access/acl", data={**base, "group": "admins"})) == (
        400,
        "parameter 'group' - groups are currently not supported.",
    )
    assert error(pbs.call("PUT", "/access/acl", data=base)) == (400, "missing 'userid' or 'group' parameter.")
    assert error(pbs.call("PUT", "/access/acl", data={**base, "auth-id": "ghost@pbs"})) == (400, "no such user.")
    assert error(pbs.call("PUT", "/access/acl", data={**base, "auth-id": "ghost@pbs!t"})) == (400, "no such API token.")
    pbs.user("acme@pbs")
    response = pbs.call("PUT", "/access/acl", data={"path": "/foo", "role": "Admin", "auth-id": "acme@pbs"})
    assert error(response) == (400, "invalid acl path '/foo'.")


def test_acl_put_is_idempotent_and_deleting_a_missing_entry_succeeds(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant(NS, "acme@pbs", "DatastoreBackup", propagate=True)
    pbs.grant(NS, "acme@pbs", "DatastoreBackup", propagate=False)
    entries = pbs.ok("GET", "/access/acl", params={"path": NS, "exact": 1})
    assert [(e["roleid"], e["propagate"]) for e in entries] == [("DatastoreBackup", False)]
    for auth_id in ("acme@pbs", "ghost@pbs"):  # unknown auth-ids and bad paths may be deleted
        data = {"path": "/foo", "role": "Admin", "auth-id": auth_id, "delete": 1}
        assert pbs.call("PUT", "/access/acl", data=data).json() == {"data": None}


def test_unprivileged_users_may_only_set_acls_for_their_own_tokens(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    token = pbs.token("acme@pbs", "backup")
    pbs.user("other@pbs")
    pbs.token("other@pbs", "t")
    headers = ticket_login(pbs, "acme@pbs")
    client = pbs.client()

    def put(**data: str) -> tuple[int, str]:
        return error(client.put("/access/acl", headers=headers, data={"path": NS, "role": "DatastoreBackup", **data}))

    assert put(**{"auth-id": "acme@pbs"}) == (400, "Unprivileged users can only set ACL items for API tokens.")
    assert put(**{"auth-id": "other@pbs!t"}) == (
        400,
        "Unprivileged users can only set ACL items for their own API tokens.",
    )
    assert put() == (400, "Unprivileged user needs to provide auth_id to update ACL item.")
    assert put(**{"auth-id": token[0]}) == (200, '{"data":null}')
    response = pbs.call(
        "PUT", "/access/acl", auth=token, data={"path": NS, "role": "DatastoreBackup", "auth-id": token[0]}
    )
    assert error(response) == (400, "Unprivileged API tokens can't set ACL items.")


def test_acls_may_exist_before_the_namespace(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant("/datastore/store1/not/yet/created", "acme@pbs", "DatastoreBackup")


# --- 4.2: ACL paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/access",
        "/access/acl",
        "/access/users",
        "/access/domains",
        "/access/openid",
        "/access/openid/x",
        "/datastore",
        "/datastore/store1",
        "/datastore/store1/a/b/c/d/e/f/g",
        "/remote",
        "/remote/r1",
        "/remote/r1/store",
        "/remote/r1/store/a/b/c/d/e/f/g",
        "/system",
        "/system/certificates",
        "/system/tasks",
        "/system/services/x",
        "/system/network",
        "/system/network/dns",
        "/system/network/interfaces/eth0",
        "/system/s3-endpoint/x",
        "/system/encryption-keys",
        "/tape",
        "/tape/device/x",
        "/tape/pool",
        "/tape/job/x",
    ],
)
def test_check_acl_path_accepts_pbs_shapes(path: str) -> None:
    check_acl_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "/foo",
        "/access/x",
        "/access/users/x",
        "/access/openid/x/y",
        "/datastore/store1/a/b/c/d/e/f/g/h",
        "/remote/r1/store/a/b/c/d/e/f/g/h",
        "/system/x",
        "/system/tasks/x",
        "/system/network/dns/x",
        "/system/network/interfaces/a/b",
        "/tape/x",
        "/tape/device/x/y",
    ],
)
def test_check_acl_path_refuses_other_shapes(path: str) -> None:
    with pytest.raises(ValueError, match="invalid acl path"):
        check_acl_path(path)


def test_acl_paths_are_limited_to_128_chars(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    path = "/datastore/store1/" + "/".join(["n" * 20] * 6)
    assert len(path) > 128
    response = pbs.call("PUT", "/access/acl", data={"path": path, "role": "DatastoreBackup", "auth-id": "acme@pbs"})
    assert error(response) == (400, "parameter verification failed - 'path': value may only be 128 characters long")


# --- /access/permissions ---------------------------------------------------------------------------------


def test_permissions_of_another_auth_id_need_sys_audit_on_access_or_own_token(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    token = pbs.token("acme@pbs", "t")
    other = pbs.user_with_token("other@pbs")
    response = pbs.call("GET", "/access/permissions", auth=token, params={"auth-id": "other@pbs"})
    assert error(response) == (400, "not allowed to list permissions of other@pbs")
    # A user may query its own tokens, a token its own auth-id.
    headers = ticket_login(pbs, "acme@pbs")
    assert pbs.client().get("/access/permissions", headers=headers, params={"auth-id": token[0]}).status_code == 200
    assert pbs.call("GET", "/access/permissions", auth=token, params={"auth-id": token[0]}).status_code == 200
    pbs.grant("/access", "other@pbs", "Audit")
    pbs.grant("/access", other[0], "Audit")
    assert pbs.call("GET", "/access/permissions", auth=other, params={"auth-id": "acme@pbs"}).status_code == 200


def test_permissions_without_a_path_list_acl_paths_with_privileges_only(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.grant(NS, "acme@pbs", "DatastoreBackup")
    pbs.user("other@pbs")
    pbs.grant("/datastore/store1/other", "other@pbs", "DatastoreBackup")
    data = pbs.ok("GET", "/access/permissions", params={"auth-id": "acme@pbs"})
    assert data == {NS: {"Datastore.Backup": True}}
    root = pbs.ok("GET", "/access/permissions", params={"auth-id": "root@pam"})
    assert {"/", "/access", "/datastore", "/remote", "/system", NS, "/datastore/store1/other"} <= set(root)


@pytest.mark.parametrize(
    "grants",
    [
        [("/datastore/store1", "u@pbs", "DatastoreAdmin", True), (NS, "u@pbs", "DatastoreAudit", False)],
        [("/datastore/store1", "u@pbs", "DatastoreAdmin", True), (NS, "u@pbs", "NoAccess", True)],
        [("/datastore", "u@pbs", "DatastoreReader", True), (NS, "u@pbs!t", "DatastoreReader", True)],
        [(NS, "u@pbs", "DatastoreBackup", True), (NS, "u@pbs!t", "DatastoreAdmin", False)],
        [("/", "u@pbs!t", "Admin", True), (NS, "u@pbs", "DatastoreAudit", True)],
    ],
)
def test_the_namespace_listing_shortcut_matches_the_per_path_lookup(pbs: Pbs, grants: list) -> None:
    pbs.user("u@pbs")
    pbs.token("u@pbs", "t")
    for path, auth_id, role, propagate in grants:
        pbs.grant(path, auth_id, role, propagate=propagate)
    state = pbs.sim.state
    for auth_id in ("u@pbs", "u@pbs!t"):
        uniform = state.uniform_privs_below(auth_id, ("datastore", "store1", "acme"))
        assert uniform is not None
        for below in (("x",), ("x", "y", "z")):
            assert uniform == state.lookup_privs(auth_id, ("datastore", "store1", "acme", *below))
    # An entry below the anchor disables the shortcut.
    assert state.uniform_privs_below("u@pbs!t", ("datastore",)) is None
