"""Shared role fixtures: one user per role, two tenants and a client of each.

Use them from any test package by importing them into that package's conftest.py::

    from tests.fixtures import *  # noqa: F403  (pytest fixtures are found by name)

or by listing ``pytest_plugins = ["tests.fixtures"]`` in the top-level tests/conftest.py.
Tenant A and tenant B share one host and datastore (as real tenants do), so a leak
between them cannot hide behind different hosts.
"""

from __future__ import annotations

import pytest

from accounts.models import Role, User
from tenants.models import Datastore, Tenant
from tests.factories import make_datastore, make_user
from tests.factories import make_tenant as _make_tenant

__all__ = [
    "accounting_user",
    "client_a",
    "client_a_admin",
    "client_b",
    "client_b_admin",
    "operator_user",
    "shared_datastore",
    "staff_user",
    "tenant_a",
    "tenant_b",
]


@pytest.fixture
def staff_user(db: None) -> User:
    """An MSP admin (role ``admin``): may do everything."""
    return make_user(role=Role.ADMIN, username="admin-ann")


@pytest.fixture
def operator_user(db: None) -> User:
    return make_user(role=Role.OPERATOR, username="operator-otto")


@pytest.fixture
def accounting_user(db: None) -> User:
    return make_user(role=Role.ACCOUNTING, username="accounting-ada")


@pytest.fixture
def shared_datastore(db: None) -> Datastore:
    return make_datastore(name="store1")


@pytest.fixture
def tenant_a(shared_datastore: Datastore) -> Tenant:
    return _make_tenant(slug="tenant-a", name="Tenant A", datastore=shared_datastore)


@pytest.fixture
def tenant_b(shared_datastore: Datastore) -> Tenant:
    return _make_tenant(slug="tenant-b", name="Tenant B", datastore=shared_datastore)


@pytest.fixture
def client_a(tenant_a: Tenant) -> User:
    """A plain (non-admin) client user of tenant A."""
    return make_user(role=Role.CLIENT, tenant=tenant_a, username="client-a")


@pytest.fixture
def client_a_admin(tenant_a: Tenant) -> User:
    """Tenant A's client admin (may invite and remove tenant A's users)."""
    return make_user(role=Role.CLIENT, tenant=tenant_a, username="client-a-admin", is_tenant_admin=True)


@pytest.fixture
def client_b(tenant_b: Tenant) -> User:
    return make_user(role=Role.CLIENT, tenant=tenant_b, username="client-b")


@pytest.fixture
def client_b_admin(tenant_b: Tenant) -> User:
    return make_user(role=Role.CLIENT, tenant=tenant_b, username="client-b-admin", is_tenant_admin=True)
