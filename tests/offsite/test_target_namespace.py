"""An offsite policy can never pour copies into a tenant's reach: no target namespace inside a
tenant's namespace or under the tenants' parent on the target datastore; copying a whole
datastore is for MSP admins only."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Role
from offsite import services
from offsite.models import OffsitePolicy
from tests.factories import make_tenant, make_user
from tests.offsite.conftest import Hosts


@pytest.mark.parametrize("target_ns", ["clients/victim", "clients/victim/deeper", "clients", "clients/new"])
def test_a_target_inside_the_tenants_space_is_refused(hosts: Hosts, target_ns: str) -> None:
    make_tenant(slug="victim", datastore=hosts.dst_store, namespace="clients/victim")
    with pytest.raises(ValidationError) as info:
        services.policy_create(
            source_datastore=hosts.src_store, target_datastore=hosts.dst_store, target_ns=target_ns, apply=False
        )
    assert "target_ns" in info.value.message_dict
    assert not OffsitePolicy.objects.exists()


def test_a_target_outside_it_is_fine_and_cannot_be_moved_inside_later(hosts: Hosts) -> None:
    make_tenant(slug="victim", datastore=hosts.dst_store, namespace="clients/victim")
    policy = services.policy_create(
        source_datastore=hosts.src_store, target_datastore=hosts.dst_store, target_ns="offsite", apply=False
    )
    with pytest.raises(ValidationError):
        services.policy_update(policy=policy, target_ns="clients/victim", apply=False)


def test_only_an_admin_may_copy_a_whole_datastore(hosts: Hosts) -> None:
    operator: Any = make_user(role=Role.OPERATOR, username="op")
    with pytest.raises(PermissionDenied):
        services.policy_create(
            source_datastore=hosts.src_store, target_datastore=hosts.dst_store, actor=operator, apply=False
        )
    admin: Any = make_user(role=Role.ADMIN, username="boss")
    services.policy_create(source_datastore=hosts.src_store, target_datastore=hosts.dst_store, actor=admin, apply=False)
