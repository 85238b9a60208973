"""The shared factories and role fixtures build what they promise."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.factories import DEFAULT_PASSWORD, make_user


@pytest.mark.django_db
def test_role_fixtures_have_the_roles_and_tenants_they_name(
    staff_user, operator_user, accounting_user, client_a, client_b, tenant_a, tenant_b
) -> None:
    assert (staff_user.role, staff_user.tenant) == (Role.ADMIN, None)
    assert (operator_user.role, operator_user.tenant) == (Role.OPERATOR, None)
    assert (accounting_user.role, accounting_user.tenant) == (Role.ACCOUNTING, None)
    assert client_a.tenant == tenant_a
    assert client_b.tenant == tenant_b
    assert tenant_a.datastore == tenant_b.datastore
    assert tenant_a.acl_path == "/datastore/store1/clients/tenant-a"
    assert tenant_a.pbs_userid == "tenant-a@pbs"


@pytest.mark.django_db
def test_make_user_hashes_the_password_with_argon2() -> None:
    user = make_user(role=Role.OPERATOR)
    assert user.password.startswith("argon2")
    assert user.check_password(DEFAULT_PASSWORD)

