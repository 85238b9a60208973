"""The three front doors of "create a tenant" (the form, the API, ``manage.py tenant create``)
resolve host, datastore, plan and retention through one service: the same bad input gives
the same error everywhere and leaves nothing behind."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audit.models import AuditEvent
from plans.models import Plan
from tenants.models import Tenant
from tests.factories import make_datastore, make_host

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_hosts() -> dict[str, Any]:
    host_a, host_b = make_host(name="pbs-a"), make_host(name="pbs-b")
    return {
        "a": host_a, "b": host_b,
        "a1": make_datastore(host=host_a, name="store1"),
        "b2": make_datastore(host=host_b, name="store2"),
        "b1": make_datastore(host=host_b, name="store1"),
    }  # fmt: skip


def _api_error(staff_user: Any, **fields: Any) -> str:
    api = APIClient()
    api.force_authenticate(staff_user)
    response = api.post("/api/v1/tenants/", {"slug": "acme", "name": "Acme", **fields}, format="json")
    assert response.status_code == 400, response.content
    return " ".join(str(m) for msgs in response.json()["errors"].values() for m in msgs)


def _cli_error(*args: str) -> str:
    with pytest.raises(CommandError) as info:
        call_command(
            "tenant", "create", "--slug", "acme", "--name", "Acme", *args, stdout=StringIO(), stderr=StringIO()
        )
    assert info.value.returncode == 2
    return str(info.value)


@pytest.mark.parametrize(
    ("api_fields", "cli_args", "message"),
    [
        ({"plan": "Gold"}, ["--plan", "Gold"], "No plan named 'Gold'."),
        ({"host": "nope"}, ["--host", "nope"], "No host named 'nope'."),
        ({"host": "pbs-a", "datastore": "store2"}, ["--host", "pbs-a", "--datastore", "store2"],
         "No datastore 'store2' on pbs-a."),
        ({"datastore": "store1"}, ["--datastore", "store1"],
         "Several hosts have a datastore 'store1': name the host too."),
    ],
)
def test_the_api_and_the_command_refuse_the_same_input_alike(
    two_hosts: dict[str, Any], staff_user: Any, api_fields: dict[str, str], cli_args: list[str], message: str
) -> None:
    assert message in _api_error(staff_user, **api_fields)
    assert message in _cli_error(*cli_args)
    assert not Tenant.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="tenant.").exists()


def test_a_datastore_named_alone_is_found_when_it_is_unambiguous(two_hosts: dict[str, Any], staff_user: Any) -> None:
    Plan.objects.create(name="Standard")
    api = APIClient()
    api.force_authenticate(staff_user)
    response = api.post(
        "/api/v1/tenants/",
        {"slug": "acme", "name": "Acme", "datastore": "store2", "plan": "Standard", "keep_daily": 3},
        format="json",
    )
    assert response.status_code == 201, response.content
    tenant = Tenant.objects.get(slug="acme")
    assert (tenant.datastore_id, tenant.plan.name, tenant.keep_daily) == (two_hosts["b2"].pk, "Standard", 3)
    out = StringIO()
    call_command("tenant", "create", "--slug", "globex", "--name", "Globex", "--datastore", "store2", stdout=out)
    assert Tenant.objects.get(slug="globex").datastore_id == two_hosts["b2"].pk


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"datastore": "store1"}, "Several hosts have a datastore 'store1': name the host too."),
        ({"host": "pbs-a", "datastore": "store2"}, "No datastore 'store2' on pbs-a."),
        ({"host": "nope"}, "No host named 'nope'."),
    ],
)
def test_the_validate_api_resolves_the_placement_as_create_does(
    two_hosts: dict[str, Any], staff_user: Any, fields: dict[str, str], message: str
) -> None:
    api = APIClient()
    api.force_authenticate(staff_user)
    body = api.post("/api/v1/tenants/validate/", {"slug": "acme", **fields}, format="json").json()
    assert body["valid"] is False
    assert message in " ".join(m for msgs in body["errors"].values() for m in msgs)
    assert message in _api_error(staff_user, **fields)
