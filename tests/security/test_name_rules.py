"""Names are checked whole: a trailing newline (which ``^...$`` with ``re.match`` lets through)
is refused by every rule, as PBS's own (Rust) regexes refuse it. (A fingerprint is a value,
not a name: it is stripped and normalised instead.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pbsclient import validation
from tenants.naming import restore_name_problems, slug_problems


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (validation.validate_userid, "acme@pbs"),
        (validation.validate_token_name, "backup"),
        (validation.validate_tokenid, "acme@pbs!backup"),
        (validation.validate_authid, "acme@pbs"),
        (validation.validate_namespace_component, "acme"),
        (validation.validate_namespace, "clients/acme"),
        (validation.validate_acl_path, "/datastore/store1"),
        (validation.validate_job_id, "t-acme"),
        (validation.validate_store_name, "store1"),
        (validation.validate_remote_name, "pbs-a"),
    ],
)
def test_pbs_name_rules_refuse_a_trailing_newline(check: Callable[[str], Any], good: str) -> None:
    check(good)
    with pytest.raises(ValueError):  # noqa: PT011 - each rule raises its own ValueError subclass
        check(good + "\n")


def test_portal_name_rules_refuse_a_trailing_newline() -> None:
    assert slug_problems("acme") == []
    assert slug_problems("acme\n")
    assert restore_name_problems("acme", "laptop") == []
    assert restore_name_problems("acme", "laptop\n")
