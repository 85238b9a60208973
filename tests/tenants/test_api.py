"""REST API: roles, the lifecycle over HTTP, reveal once, constant query counts, schema."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenants.models import Tenant
from tests.factories import make_datastore, make_host, make_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(staff_user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


def test_tenant_list_needs_a_role_and_has_constant_queries(api: APIClient, client_a: Any) -> None:
    store = make_datastore(host=make_host(name="pbs-x"), name="store1")
    make_tenant(slug="one", datastore=store)
    with CaptureQueriesContext(connection) as few:
        assert api.get("/api/v1/tenants/").status_code == 200
    for i in range(40):
        make_tenant(slug=f"more{i}", datastore=store)
    with CaptureQueriesContext(connection) as many:
        body = api.get("/api/v1/tenants/?status=active&host=pbs-x").json()
    assert body["count"] == 41
    assert len(many.captured_queries) == len(few.captured_queries) + 1  # the host filter lookup
    anon = APIClient()
    assert anon.get("/api/v1/tenants/").status_code in (401, 403)
    clientside = APIClient()
    clientside.force_authenticate(client_a)
    assert clientside.get("/api/v1/tenants/").status_code == 403


def test_create_onboard_reveal_suspend_offboard_over_the_api(
    api: APIClient, sim_host: Any, django_capture_on_commit_callbacks: Any
) -> None:
    response = api.post("/api/v1/tenants/", {"slug": "Bad Slug", "name": "x"}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["errors"]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/tenants/",
            {"slug": "acme", "name": "Acme", "host": "pbs-a", "datastore": "store2", "keep_daily": 3},
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["tenant"]["datastore"] == "store2"
    # Celery runs eagerly in these tests: the run finished inside the request's on_commit.
    run = api.get(f"/api/v1/onboarding-runs/{body['run']['id']}/").json()
    assert run["status"] == "succeeded"
    assert [s["state"] for s in run["steps"]] == ["done"] * 7

    with django_capture_on_commit_callbacks(execute=True):
        again = api.post("/api/v1/tenants/acme/onboard/")
    assert again.status_code == 201
    assert again.json()["kind"] == "repair"

    detail = api.get("/api/v1/tenants/acme/").json()
    assert detail["status"] == "active"
    assert detail["connection"]["repository"] == "acme@pbs!backup@pbs-a.sim.invalid:8007:store2"
    token = next(t for t in detail["tokens"] if t["purpose"] == "backup" and not t["revoked_at"])
    assert token["secret_available"] is True
    assert "secret" not in token

    first = api.post(f"/api/v1/tenants/acme/tokens/{token['id']}/reveal/")
    assert first.status_code == 200
    assert len(first.json()["secret"]) == 36
    second = api.post(f"/api/v1/tenants/acme/tokens/{token['id']}/reveal/")
    assert second.status_code == 409
    assert api.get(f"/api/v1/tenants/acme/tokens/{token['id']}/reveal/").status_code == 405

    assert api.post("/api/v1/tenants/acme/suspend/", {"reason": "late"}, format="json").json()["status"] == "suspended"
    assert api.post("/api/v1/tenants/acme/resume/").json()["status"] == "active"
    retention = api.post("/api/v1/tenants/acme/retention/", {"keep_last": 5, "schedule": "hourly"}, format="json")
    assert retention.json()["keep_last"] == 5
    assert retention.json()["keep_daily"] is None
    assert api.post("/api/v1/tenants/acme/drift/").json() == []

    bad = api.post("/api/v1/tenants/acme/offboard/", {"confirm_slug": "nope"}, format="json")
    assert bad.status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        off = api.post("/api/v1/tenants/acme/offboard/", {"confirm_slug": "acme"}, format="json")
    assert off.status_code == 201
    assert Tenant.objects.get(slug="acme").status == "offboarded"

    audit = api.get("/api/v1/audit/?tenant=acme&action=pbs.").json()
    assert audit["count"] > 5
    assert all(event["action"].startswith("pbs.") for event in audit["results"])


def test_bulk_onboard_endpoint(api: APIClient, sim_host: Any) -> None:
    store = sim_host.datastores.get(name="store1")
    from tenants import services

    for slug in ("b1", "b2", "b3"):
        services.tenant_create(slug=slug, name=slug, datastore=store)
    response = api.post("/api/v1/tenants/onboard/", {"slugs": ["b1", "b2", "b3"]}, format="json")
    assert response.status_code == 202
    assert len(response.json()["runs"]) == 3
    assert api.post("/api/v1/tenants/onboard/", {"slugs": ["nope"]}, format="json").status_code == 400


def test_validate_endpoint(api: APIClient) -> None:
    ok = api.post("/api/v1/tenants/validate/", {"slug": "acme"}, format="json").json()
    assert ok["valid"] is True
    assert ok["names"]["backup_tokenid"] == "acme@pbs!backup"
    bad = api.post("/api/v1/tenants/validate/", {"slug": "-x"}, format="json").json()
    assert bad["valid"] is False


def test_hosts_api(api: APIClient, sim_host: Any, operator_user: Any) -> None:
    hosts = api.get("/api/v1/hosts/").json()
    assert [h["name"] for h in hosts] == ["pbs-a"]
    assert "token_secret" not in hosts[0]
    assert api.post("/api/v1/hosts/pbs-a/check/").json()["reachable"] is True
    operator = APIClient()
    operator.force_authenticate(operator_user)
    denied = operator.post("/api/v1/hosts/", {"name": "x", "url": "https://x", "token_id": "a@pbs!b",
                                               "token_secret": "s"}, format="json")  # fmt: skip
    assert denied.status_code == 403


def test_schema_lists_the_tenant_operations(api: APIClient) -> None:
    schema = api.get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    for path in ("/api/v1/tenants/", "/api/v1/tenants/{slug}/suspend/", "/api/v1/hosts/",
                 "/api/v1/onboarding-runs/{run_id}/", "/api/v1/audit/",
                 "/api/v1/tenants/{slug}/tokens/{token_id}/reveal/"):  # fmt: skip
        assert path in paths, path
    assert "post" in paths["/api/v1/tenants/"]
    assert "get" in paths["/api/v1/tenants/"]
