"""Slugs are accepted only if every PBS name derived from them is valid."""

from __future__ import annotations

import pytest

from tenants.naming import restore_name_problems, slug_problems, tenant_names


def test_a_good_slug_gives_the_designed_names() -> None:
    names = tenant_names("acme-eu")
    assert slug_problems("acme-eu") == []
    assert names.userid == "acme-eu@pbs"
    assert names.backup_tokenid == "acme-eu@pbs!backup"
    assert names.namespace == "clients/acme-eu"
    assert names.prune_job_id == "t-acme-eu"
    assert names.acl_path("store1") == "/datastore/store1/clients/acme-eu"
    assert names.tokenid(names.restore_token_name("laptop")) == "acme-eu@pbs!restore-laptop"


@pytest.mark.parametrize(
    ("slug", "fragment"),
    [
        ("", "Enter a slug"),
        ("a", "at least 2"),
        ("x" * 31, "at most 30"),
        ("Acme", "lower-case"),
        ("-acme", "lower-case"),
        ("acme-", "lower-case"),
        ("ac me", "lower-case"),
        ("ac/me", "lower-case"),
        ("root", "reserved"),
        ("new", "reserved"),
    ],
)
def test_bad_slugs_are_refused_with_a_reason(slug: str, fragment: str) -> None:
    problems = slug_problems(slug)
    assert problems
    assert any(fragment in p for p in problems), problems


def test_the_acl_path_limit_is_checked_with_the_real_store(settings: object) -> None:
    settings.PORTAL_NAMESPACE_PARENT = "/".join(["level"] * 5) + "/" + "p" * 30  # type: ignore[attr-defined]
    problems = slug_problems("x" * 30, store="s" * 32)
    assert any("ACL path" in p or "namespace" in p for p in problems)


def test_the_longest_slug_still_leaves_room_for_restore_tokens() -> None:
    slug = "x" * 30
    assert slug_problems(slug) == []
    names = tenant_names(slug)
    assert names.max_restore_name_length >= 8
    assert restore_name_problems(slug, "y" * names.max_restore_name_length) == []
    assert restore_name_problems(slug, "y" * (names.max_restore_name_length + 1))
