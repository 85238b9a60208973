"""Shared role fixtures plus two tenants provisioned on an in-process PBS simulator."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from accounts.models import Role, User
from pbsclient.errors import AlreadyExists
from tenants.models import Datastore, PbsHost, Tenant
from tenants.pbs import client_for_host
from tests.factories import make_tenant, make_user
from tests.fixtures import *  # noqa: F403  (pytest finds fixtures by name)


@dataclass
class SimTenants:
    """Tenants A and B on one simulated host, provisioned as the tenant PBS design says."""

    sim: Any
    host: PbsHost
    tenant_a: Tenant
    tenant_b: Tenant
    client_a: User
    client_b: User

    def login(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client


def provision_on_pbs(host: PbsHost, tenant: Tenant, *, reader: bool = True) -> None:
    """User, namespace and user ACLs for ``tenant`` (what onboarding does)."""
    store = tenant.datastore.name
    parent, _, name = tenant.namespace.rpartition("/")
    with client_for_host(host) as pbs:
        pbs.user_create(userid=tenant.pbs_userid, comment=f"tenant {tenant.slug}")
        with suppress(AlreadyExists):
            pbs.namespace_create(store, parent)
        pbs.namespace_create(store, name, parent=parent)
        pbs.acl_update(path=tenant.acl_path, role="DatastorePowerUser", auth_id=tenant.pbs_userid)
        if reader:
            pbs.acl_update(path=tenant.acl_path, role="DatastoreReader", auth_id=tenant.pbs_userid)


@pytest.fixture
def sim_tenants(pbs_sim: Any, pbs_host: Any) -> SimTenants:
    host = pbs_host(pbs_sim)
    store = Datastore.objects.get(host=host, name="store1")
    tenant_a = make_tenant(slug="tenant-a", name="Tenant A", datastore=store)
    tenant_b = make_tenant(slug="tenant-b", name="Tenant B", datastore=store)
    for tenant in (tenant_a, tenant_b):
        provision_on_pbs(host, tenant)
    return SimTenants(
        sim=pbs_sim,
        host=host,
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        client_a=make_user(role=Role.CLIENT, tenant=tenant_a, username="sim-client-a"),
        client_b=make_user(role=Role.CLIENT, tenant=tenant_b, username="sim-client-b"),
    )
