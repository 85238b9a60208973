"""Namespaces: listing, create and delete quirks (reference section 5)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pbssim.core_support import Pbs, error

STORE = "/admin/datastore/store1/namespace"


@pytest.fixture
def pbs() -> Iterator[Pbs]:
    harness = Pbs()
    yield harness
    harness.close()


def names(items: list[dict[str, str]]) -> list[str]:
    return [item["ns"] for item in items]


def seed(pbs: Pbs, ns: str, backup_id: str = "100", *, owner: str | None = None, protected: bool = False) -> None:
    pbs.sim.seed_snapshot(
        store="store1",
        ns=ns,
        backup_type="vm",
        backup_id=backup_id,
        backup_time=1_700_000_000,
        size=1000,
        owner=owner,
        protected=protected,
    )


def test_listing_starts_with_the_parent_and_goes_depth_first(pbs: Pbs) -> None:
    for ns in ("clients", "clients/acme", "clients/acme/prod", "clients/beta", "internal"):
        pbs.namespace("store1", ns)
    assert names(pbs.ok("GET", STORE)) == [
        "",
        "clients",
        "clients/acme",
        "clients/acme/prod",
        "clients/beta",
        "internal",
    ]
    assert names(pbs.ok("GET", STORE, params={"parent": "clients", "max-depth": 1})) == [
        "clients",
        "clients/acme",
        "clients/beta",
    ]
    assert names(pbs.ok("GET", STORE, params={"parent": "clients", "max-depth": 0})) == ["clients"]


def test_the_parent_is_listed_even_if_it_does_not_exist(pbs: Pbs) -> None:
    assert names(pbs.ok("GET", STORE, params={"parent": "ghost"})) == ["ghost"]
    # ... so existence is tested by listing the parent with max-depth=1.
    pbs.namespace("store1", "clients")
    assert "clients/acme" not in names(pbs.ok("GET", STORE, params={"parent": "clients", "max-depth": 1}))


def test_only_namespaces_the_caller_may_see_are_listed(pbs: Pbs) -> None:
    for ns in ("clients", "clients/acme", "clients/acme/prod", "clients/beta"):
        pbs.namespace("store1", ns)
    pbs.user("acme@pbs")
    token = pbs.token("acme@pbs", "t")
    for auth_id in ("acme@pbs", token[0]):
        pbs.grant("/datastore/store1/clients/acme", auth_id, "DatastoreReader")
    listed = pbs.ok("GET", STORE, auth=token, params={"parent": "clients"})
    assert names(listed) == ["clients/acme", "clients/acme/prod"]
    assert names(pbs.ok("GET", STORE, auth=token, params={"parent": "clients/acme"})) == [
        "clients/acme",
        "clients/acme/prod",
    ]


def test_nothing_visible_and_no_rights_on_the_parent_is_403(pbs: Pbs) -> None:
    pbs.namespace("store1", "clients")
    auth = pbs.user_with_token("acme@pbs")
    assert error(pbs.call("GET", STORE, auth=auth, params={"parent": "clients"})) == (403, "permission check failed")


def test_create_needs_modify_on_the_parent(pbs: Pbs) -> None:
    pbs.namespace("store1", "clients")
    auth = pbs.user_with_token("acme@pbs")
    response = pbs.call("POST", STORE, auth=auth, data={"name": "acme", "parent": "clients"})
    assert error(response) == (403, "permission check failed - missing Datastore.Modify on /datastore/store1/clients")
    response = pbs.call("POST", STORE, auth=auth, data={"name": "acme"})
    assert error(response) == (403, "permission check failed - missing Datastore.Modify on /datastore/store1")
    for auth_id in ("acme@pbs", auth[0]):
        pbs.grant("/datastore/store1/clients", auth_id, "DatastoreAdmin")
    assert pbs.ok("POST", STORE, auth=auth, data={"name": "acme", "parent": "clients"}) == "clients/acme"


def test_create_errors(pbs: Pbs) -> None:
    response = pbs.call("POST", STORE, data={"name": "acme", "parent": "a"})
    assert error(response) == (400, "cannot create new namespace, parent a doesn't already exists")
    deep = "a/b/c/d/e/f/g"
    pbs.sim.seed_snapshot(store="store1", ns=deep, backup_type="vm", backup_id="1", backup_time=1, size=1)
    assert error(pbs.call("POST", STORE, data={"name": "h", "parent": deep})) == (400, "namespace too deep, 7 >= max 7")
    response = pbs.call("POST", STORE, data={"name": "a/b"})
    assert error(response) == (400, "parameter verification failed - 'name': value does not match the regex pattern")
    response = pbs.call("POST", STORE, data={"name": "x" * 33})
    assert error(response) == (400, "parameter verification failed - 'name': value may only be 32 characters long")


def test_create_is_idempotent(pbs: Pbs) -> None:
    pbs.namespace("store1", "clients")
    for _ in range(3):
        assert pbs.ok("POST", STORE, data={"name": "acme", "parent": "clients"}) == "clients/acme"
    assert names(pbs.ok("GET", STORE)) == ["", "clients", "clients/acme"]


def test_delete_refuses_the_root_and_needs_modify_on_the_parent(pbs: Pbs) -> None:
    assert error(pbs.call("DELETE", STORE, params={"ns": ""})) == (400, "Cannot create/delete root namespace!")
    pbs.namespace("store1", "clients")
    pbs.namespace("store1", "clients/acme")
    auth = pbs.user_with_token("acme@pbs")
    for auth_id in ("acme@pbs", auth[0]):
        pbs.grant("/datastore/store1/clients/acme", auth_id, "DatastoreAdmin")
    response = pbs.call("DELETE", STORE, auth=auth, params={"ns": "clients/acme"})
    assert error(response) == (403, "permission check failed - missing Datastore.Modify on /datastore/store1/clients")


def test_delete_without_delete_groups_removes_only_empty_namespaces(pbs: Pbs) -> None:
    for ns in ("clients", "clients/acme", "clients/acme/empty"):
        pbs.namespace("store1", ns)
    seed(pbs, "clients/acme")
    response = pbs.call("DELETE", STORE, params={"ns": "clients/acme"})
    assert error(response) == (400, "only partially deleted due to existing groups but `delete-groups` not true")
    assert names(pbs.ok("GET", STORE, params={"parent": "clients"})) == ["clients", "clients/acme"]


def test_delete_with_delete_groups_returns_the_statistics(pbs: Pbs) -> None:
    pbs.namespace("store1", "clients")
    seed(pbs, "clients/acme", "100")
    seed(pbs, "clients/acme/prod", "200")
    stats = pbs.ok("DELETE", STORE, params={"ns": "clients/acme", "delete-groups": 1})
    assert stats == {"removed-groups": 2, "protected-snapshots": 0, "removed-snapshots": 2}
    assert names(pbs.ok("GET", STORE)) == ["", "clients"]


def test_protected_snapshots_survive_a_delete(pbs: Pbs) -> None:
    seed(pbs, "acme", "100", protected=True)
    seed(pbs, "acme", "101")
    response = pbs.call("DELETE", STORE, params={"ns": "acme", "delete-groups": 1})
    assert error(response) == (400, "group only partially deleted due to protected snapshots or active operations")
    stats = pbs.ok("DELETE", STORE, params={"ns": "acme", "delete-groups": 1, "error-on-protected": 0})
    assert stats == {"removed-groups": 0, "protected-snapshots": 1, "removed-snapshots": 0}
    assert [s["backup-id"] for s in pbs.ok("GET", "/admin/datastore/store1/snapshots", params={"ns": "acme"})] == [
        "100"
    ]


def test_eight_components_pass_the_regex_but_not_the_namespace_type(pbs: Pbs) -> None:
    response = pbs.call("GET", STORE, params={"parent": "a/b/c/d/e/f/g/h"})
    assert error(response) == (400, "namespace too deep, 7 >= max 7")
    response = pbs.call("GET", STORE, params={"parent": "a/b/c/d/e/f/g/h/i"})
    assert error(response) == (400, "parameter verification failed - 'parent': value does not match the regex pattern")


def test_an_unknown_store_is_403_without_rights_and_400_with_them(pbs: Pbs) -> None:
    auth = pbs.user_with_token("acme@pbs")
    path = "/admin/datastore/nostore/namespace"
    assert error(pbs.call("GET", path, auth=auth)) == (403, "permission check failed")
    assert error(pbs.call("POST", path, auth=auth, data={"name": "x"})) == (
        403,
        "permission check failed - missing Datastore.Modify on /datastore/nostore",
    )
    assert error(pbs.call("GET", path)) == (400, "no such datastore 'nostore'")
    assert error(pbs.call("POST", path, data={"name": "x"})) == (400, "no such datastore 'nostore'")
