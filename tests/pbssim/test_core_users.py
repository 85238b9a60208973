"""Users and API tokens (reference sections 2 and 3)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pbssim.core_support import Pbs, error, ticket_login


@pytest.fixture
def pbs() -> Iterator[Pbs]:
    harness = Pbs()
    yield harness
    harness.close()


def works(pbs: Pbs, auth: tuple[str, str]) -> bool:
    return pbs.call("GET", "/version", auth=auth).status_code == 200


# --- users ------------------------------------------------------------------------------------


def test_users_omit_unset_fields_and_keep_what_create_was_given(pbs: Pbs) -> None:
    pbs.user("acme@pbs", comment="Acme", enable=1, expire=0, email="ops@acme.example")
    assert pbs.ok("GET", "/access/users/acme@pbs") == {
        "userid": "acme@pbs",
        "comment": "Acme",
        "enable": True,
        "expire": 0,
        "email": "ops@acme.example",
    }
    pbs.user("bare@pbs")
    assert pbs.ok("GET", "/access/users/bare@pbs") == {"userid": "bare@pbs"}


def test_put_enable_1_stores_unset_and_expire_0_clears(pbs: Pbs) -> None:
    pbs.user("acme@pbs", enable=0, expire=4102444800)
    pbs.ok("PUT", "/access/users/acme@pbs", data={"enable": 1, "expire": 0, "comment": "  spaced  "})
    assert pbs.ok("GET", "/access/users/acme@pbs") == {"userid": "acme@pbs", "comment": "spaced"}


def test_a_user_in_an_unknown_realm_is_refused(pbs: Pbs) -> None:
    assert error(pbs.call("POST", "/access/users", data={"userid": "a@foo"})) == (400, "unknown realm 'foo'")
    pbs.user("local@pam")  # creating x@pam is fine (no Linux account is made)


def test_only_root_may_set_pam_passwords(pbs: Pbs) -> None:
    pbs.user("admin@pbs")
    pbs.grant("/access/users", "admin@pbs", "Admin")
    headers = ticket_login(pbs, "admin@pbs")
    response = pbs.client().post("/access/users", headers=headers, data={"userid": "x@pam", "password": "longenough"})
    assert error(response) == (400, "only superuser can edit pam credentials!")


def test_user_list_shows_all_with_sys_audit_and_yourself_otherwise(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    pbs.user("other@pbs")
    own = pbs.ok("GET", "/access/users", auth=auth)
    assert [u["userid"] for u in own] == ["acme@pbs"]  # a token sees its owner
    everyone = pbs.ok("GET", "/access/users")
    assert [u["userid"] for u in everyone] == ["root@pam", "acme@pbs", "other@pbs"]


def test_user_list_includes_tokens_with_the_underscore_parameter(pbs: Pbs) -> None:
    pbs.user_with_token("acme@pbs", "backup")
    users = {u["userid"]: u for u in pbs.ok("GET", "/access/users", params={"include_tokens": 1})}
    assert users["acme@pbs"]["tokens"] == [{"tokenid": "acme@pbs!backup"}]
    response = pbs.call("GET", "/access/users", params={"include-tokens": 1})
    assert error(response) == (
        400,
        "parameter verification failed - 'include-tokens': schema does not allow additional properties.",
    )


def test_a_token_cannot_pass_the_you_are_that_user_check(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    assert pbs.call("GET", "/access/users/acme@pbs", auth=auth).status_code == 403
    assert pbs.call("POST", "/access/users/acme@pbs/token/more", auth=auth).status_code == 403
    headers = ticket_login(pbs, "acme@pbs")  # the user itself may
    assert pbs.client().get("/access/users/acme@pbs", headers=headers).status_code == 200
    # A token with Permissions.Modify on /access/users manages users and tokens.
    pbs.grant("/access/users", "acme@pbs", "Admin")
    pbs.grant("/access/users", auth[0], "Admin")
    assert pbs.call("POST", "/access/users/acme@pbs/token/more", auth=auth).status_code == 200


def test_deleting_a_user_removes_its_tokens_and_their_acls_but_not_its_own_acls(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    token = pbs.token("acme@pbs", "backup")
    ns_path = "/datastore/store1/acme"
    pbs.grant(ns_path, "acme@pbs", "DatastorePowerUser")
    pbs.grant(ns_path, token[0], "DatastoreBackup")
    pbs.ok("DELETE", "/access/users/acme@pbs")
    assert not works(pbs, token)
    entries = pbs.ok("GET", "/access/acl", params={"path": ns_path})
    assert [(e["ugid"], e["roleid"]) for e in entries] == [("acme@pbs", "DatastorePowerUser")]
    assert pbs.ok("GET", "/access/users/acme@pbs/token") == []
    # Re-creating the user inherits the old grant.
    pbs.user("acme@pbs")
    assert pbs.ok("GET", "/access/permissions", params={"auth-id": "acme@pbs", "path": ns_path}) == {
        ns_path: {"Datastore.Backup": True, "Datastore.Prune": True}
    }


# --- tokens -----------------------------------------------------------------------------------


def test_a_token_secret_is_shown_once_and_only_metadata_afterwards(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    created = pbs.ok("POST", "/access/users/acme@pbs/token/backup", data={"comment": "for backups"})
    assert set(created) == {"tokenid", "value"}
    assert created["tokenid"] == "acme@pbs!backup"
    assert pbs.ok("GET", "/access/users/acme@pbs/token/backup") == {
        "tokenid": "acme@pbs!backup",
        "comment": "for backups",
    }
    assert pbs.ok("GET", "/access/users/acme@pbs/token") == [
        {"token-name": "backup", "tokenid": "acme@pbs!backup", "comment": "for backups"}
    ]
    assert works(pbs, (created["tokenid"], created["value"]))


def test_token_create_does_not_check_the_user(pbs: Pbs) -> None:
    tokenid, secret = pbs.token("ghost@pbs", "t")
    assert not works(pbs, (tokenid, secret))  # unusable without its user
    pbs.user("ghost@pbs")
    assert works(pbs, (tokenid, secret))


def test_a_token_id_longer_than_64_chars_is_refused(pbs: Pbs) -> None:
    userid = "u" * 50 + "@pbs"
    pbs.user(userid)
    response = pbs.call("POST", f"/access/users/{userid}/token/{'t' * 10}")
    assert response.status_code == 400
    assert "64 characters" in response.text
    assert pbs.ok("GET", f"/access/users/{userid}/token") == []


def test_regenerate_issues_a_new_secret_and_keeps_the_acls(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    old = pbs.token("acme@pbs", "backup")
    pbs.grant("/datastore/store1/acme", old[0], "DatastoreBackup")
    assert pbs.ok("PUT", "/access/users/acme@pbs/token/backup", data={"comment": "x"}) is None
    data = pbs.ok("PUT", "/access/users/acme@pbs/token/backup", data={"regenerate": 1})
    new = (old[0], data["secret"])
    assert new[1] != old[1]
    assert not works(pbs, old)
    assert works(pbs, new)
    entries = pbs.ok("GET", "/access/acl", params={"path": "/datastore/store1/acme"})
    assert [e["ugid"] for e in entries] == [old[0]]


def test_deleting_a_token_removes_its_acl_entries(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    token = pbs.token("acme@pbs", "backup")
    pbs.grant("/datastore/store1/acme", token[0], "DatastoreBackup")
    pbs.ok("DELETE", "/access/users/acme@pbs/token/backup")
    assert not works(pbs, token)
    assert pbs.ok("GET", "/access/acl", params={"path": "/datastore/store1/acme"}) == []
    # Re-created, it has no privileges and a new secret.
    again = pbs.token("acme@pbs", "backup")
    assert again[1] != token[1]
    assert pbs.ok("GET", "/access/permissions", params={"auth-id": again[0]}) == {}


def test_token_update_and_delete_properties(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    pbs.ok("POST", "/access/users/acme@pbs/token/t1", data={"comment": "c", "expire": 4102444800})
    pbs.ok("PUT", "/access/users/acme@pbs/token/t1", data={"delete": "comment", "expire": 0, "enable": 0})
    assert pbs.ok("GET", "/access/users/acme@pbs/token/t1") == {"tokenid": "acme@pbs!t1", "enable": False}


def test_token_names_are_safe_ids(pbs: Pbs) -> None:
    pbs.user("acme@pbs")
    response = pbs.call("POST", "/access/users/acme@pbs/token/-bad")
    assert error(response) == (
        400,
        "parameter verification failed - 'token-name': value does not match the regex pattern",
    )
