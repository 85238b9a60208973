"""accounts.permissions: the role predicates and scoping other apps build on."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts.models import Role
from accounts.permissions import can_view_tenant, ensure_can_view_tenant, has_role, scope_to_user
from tenants.models import TenantToken
from tests.factories import make_token, make_user


@pytest.mark.django_db
def test_staff_and_accounting_see_every_tenant_a_client_only_its_own(
    staff_user, operator_user, accounting_user, client_a, tenant_a, tenant_b
) -> None:
    for user in (staff_user, operator_user, accounting_user):
        assert can_view_tenant(user, tenant_a)
        assert can_view_tenant(user, tenant_b.pk)
    assert can_view_tenant(client_a, tenant_a)
    assert not can_view_tenant(client_a, tenant_b)
    assert not can_view_tenant(client_a, None)
    with pytest.raises(PermissionDenied):
        ensure_can_view_tenant(client_a, tenant_b)


@pytest.mark.django_db
def test_scope_to_user_filters_a_clients_rows_to_its_tenant(
    operator_user, client_a, tenant_a, tenant_b
) -> None:
    mine, theirs = make_token(tenant=tenant_a), make_token(tenant=tenant_b)
    assert set(scope_to_user(TenantToken.objects.all(), operator_user)) == {mine, theirs}
    assert list(scope_to_user(TenantToken.objects.all(), client_a)) == [mine]
    inactive = make_user(role=Role.OPERATOR, is_active=False)
    assert list(scope_to_user(TenantToken.objects.all(), inactive)) == []


@pytest.mark.django_db
def test_inactive_users_have_no_role(tenant_a) -> None:
    user = make_user(role=Role.ADMIN, is_active=False)
    assert not has_role(user, (Role.ADMIN,))


@pytest.mark.django_db
def test_clients_of_an_offboarded_tenant_lose_all_access(client: Client, client_a, tenant_a) -> None:
    client.force_login(client_a)
    assert client.get("/my/").status_code == 200
    tenant_a.status = "offboarded"
    tenant_a.save()
    assert client.get("/my/").status_code == 403
    assert client.get("/api/v1/my/connection/").status_code == 403
    assert not can_view_tenant(client_a, tenant_a)


@pytest.mark.django_db
def test_a_wrong_role_gets_403_and_an_anonymous_user_the_sign_in_page(client: Client, client_a) -> None:
    response = client.get("/tenants/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/tenants/")
    client.force_login(client_a)
    assert client.get("/tenants/").status_code == 403
