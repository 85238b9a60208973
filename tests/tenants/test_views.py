"""Staff pages: access by role, constant query counts, as-you-type validation, progress
polling, reveal-once over POST only."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tenants.models import Tenant, TenantToken
from tests.factories import make_datastore, make_host, make_tenant

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _list_queries(client: Any, **params: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("tenants:list"), params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_tenant_list_query_count_does_not_grow_with_tenants(client: Any, staff_user: Any) -> None:
    client.force_login(staff_user)
    store = make_datastore(host=make_host(name="pbs-x"), name="store1")
    for i in range(3):
        make_tenant(slug=f"few{i}", datastore=store)
    few = _list_queries(client)
    few_filtered = _list_queries(client, q="few", status="active", host=store.host_id)
    Tenant.objects.bulk_create(
        Tenant(
            slug=f"many{i:04d}",
            name=f"Many {i}",
            status="active",
            host=store.host,
            datastore=store,
            namespace=f"clients/many{i:04d}",
            pbs_userid=f"many{i:04d}@pbs",
        )
        for i in range(300)
    )
    many = _list_queries(client)
    many_filtered = _list_queries(client, q="many", status="active", host=store.host_id)
    assert many == few
    assert many_filtered == few_filtered
    assert _list_queries(client, page=4) == many


def test_tenant_list_filters_and_searches(client: Any, staff_user: Any) -> None:
    client.force_login(staff_user)
    store = make_datastore(host=make_host(name="pbs-x"), name="store1")
    make_tenant(slug="alpha", name="Alpha Ltd", datastore=store)
    make_tenant(slug="beta", name="Beta GmbH", datastore=store, status=Tenant.Status.SUSPENDED)
    body = client.get(reverse("tenants:list"), {"q": "gmbh"}).content.decode()
    assert "beta" in body
    assert "alpha" not in body
    body = client.get(reverse("tenants:list"), {"status": "active"}, **HTMX).content.decode()
    assert "alpha" in body
    assert "beta" not in body
    assert "<html" not in body, "HTMX gets only the results partial"


@pytest.mark.parametrize(("user_fixture", "status"), [("staff_user", 200), ("operator_user", 200),
                                                       ("accounting_user", 200), ("client_a", 403)])  # fmt: skip
def test_tenant_list_access_by_role(client: Any, request: Any, user_fixture: str, status: int) -> None:
    client.force_login(request.getfixturevalue(user_fixture))
    assert client.get(reverse("tenants:list")).status_code == status


def test_accounting_sees_the_list_read_only(client: Any, accounting_user: Any, tenant_a: Tenant) -> None:
    client.force_login(accounting_user)
    body = client.get(reverse("tenants:list")).content.decode()
    assert "tenant-a" in body
    assert reverse("tenants:detail", args=["tenant-a"]) not in body
    assert reverse("tenants:new") not in body
    assert client.get(reverse("tenants:detail", args=["tenant-a"])).status_code == 403
    assert client.get(reverse("tenants:hosts")).status_code == 403


@pytest.mark.parametrize("name", ["detail", "retention"])
def test_a_client_is_refused_the_staff_pages_of_any_tenant(
    client: Any, client_a: Any, tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    client.force_login(client_a)
    for tenant in (tenant_a, tenant_b):
        assert client.get(reverse(f"tenants:{name}", args=[tenant.slug])).status_code == 403


def test_anonymous_users_are_sent_to_login(client: Any) -> None:
    response = client.get(reverse("tenants:list"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


def test_validate_shows_derived_names_and_pbs_rule_errors(client: Any, staff_user: Any, sim_host: Any) -> None:
    client.force_login(staff_user)
    ok = client.post(reverse("tenants:validate"), {"slug": "acme", "name": "", "placement": "auto"}, **HTMX)
    body = ok.content.decode()
    assert "acme@pbs!backup" in body
    assert "clients/acme" in body
    assert "t-acme" in body
    long = "x" * 31
    bad = client.post(reverse("tenants:validate"), {"slug": long, "placement": "auto"}, **HTMX).content.decode()
    assert "at most 30 characters" in bad
    assert client.post(reverse("tenants:validate"), {"slug": "Acme!"}, **HTMX).content.decode().count("lower-case") == 1


def test_onboarding_from_the_form_shows_live_progress_until_done(
    client: Any, staff_user: Any, sim_host: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(staff_user)
    store = sim_host.datastores.get(name="store1")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            reverse("tenants:new"),
            {
                "slug": "acme",
                "name": "Acme",
                "placement": f"ds:{store.pk}",
                "keep_daily": 7,
                "schedule": "daily",
                "start_now": "on",
            },
        )
    tenant = Tenant.objects.get(slug="acme")
    run = tenant.onboarding_runs.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("tenants:run", args=["acme", run.pk])

    polling = client.get(response["Location"], **HTMX)
    assert polling.status_code == 200
    assert 'hx-trigger="every 1s"' in polling.content.decode()

    from tenants.onboarding import run_execute

    run_execute(run_id=run.pk)
    done = client.get(response["Location"], **HTMX)
    assert done.status_code == 286, "HTMX stops polling when the run has finished"
    assert "every 1s" not in done.content.decode()
    assert "Reveal the credentials once" in done.content.decode()


def test_reveal_is_post_only_and_once(client: Any, staff_user: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    from core.crypto import decrypt_secret

    secret = decrypt_secret(token.secret_enc)
    client.force_login(staff_user)
    url = reverse("tenants:reveal", args=["acme", token.pk])

    page = client.get(url)
    assert secret not in page.content.decode()
    assert page["Cache-Control"] == "no-store"
    first = client.post(url, **HTMX)
    assert secret in first.content.decode()
    assert 'data-copy-target="token-secret"' in first.content.decode()
    second = client.post(url, **HTMX).content.decode()
    assert secret not in second
    assert "already revealed by admin-ann" in second
    assert "Rotate the backup token" in second
    detail = client.get(reverse("tenants:detail", args=["acme"])).content.decode()
    assert "revealed" in detail
    assert secret not in detail


def test_tenant_page_shows_placement_connection_lines_and_audit(client: Any, staff_user: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    client.force_login(staff_user)
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(reverse("tenants:detail", args=["acme"])).content.decode()
    assert len(ctx.captured_queries) < 40
    assert "acme@pbs!backup@pbs-a.sim.invalid:8007:store1" in body
    assert "--ns clients/acme" in body
    assert "pvesm add pbs pbs-acme --server pbs-a.sim.invalid --port 8007 --datastore store1" in body
    assert "--namespace clients/acme --username acme@pbs!backup" in body
    assert "--fingerprint " + tenant.host.fingerprint in body
    assert "pbs.acl.grant" in body
    assert "Datastore.Backup" in body


def test_suspend_and_resume_buttons(client: Any, staff_user: Any, onboard: Any) -> None:
    tenant = onboard("acme")
    client.force_login(staff_user)
    client.post(reverse("tenants:suspend", args=["acme"]), {"reason": "unpaid"})
    tenant.refresh_from_db()
    assert tenant.status == "suspended"
    client.post(reverse("tenants:resume", args=["acme"]))
    tenant.refresh_from_db()
    assert tenant.status == "active"


def test_offboarding_needs_an_admin_and_the_typed_slug(
    client: Any, operator_user: Any, staff_user: Any, onboard: Any, django_capture_on_commit_callbacks: Any
) -> None:
    onboard("acme")
    client.force_login(operator_user)
    assert client.get(reverse("tenants:offboard", args=["acme"])).status_code == 403
    client.force_login(staff_user)
    wrong = client.post(reverse("tenants:offboard", args=["acme"]), {"confirm_slug": "acm"})
    assert wrong.status_code == 200
    assert "Type &#x27;acme&#x27; to confirm" in wrong.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        right = client.post(reverse("tenants:offboard", args=["acme"]), {"confirm_slug": "acme"})
    assert right.status_code == 302
    assert Tenant.objects.get(slug="acme").status == Tenant.Status.OFFBOARDED


def test_host_pages(client: Any, staff_user: Any, operator_user: Any, sim_host: Any) -> None:
    client.force_login(operator_user)
    body = client.get(reverse("tenants:hosts")).content.decode()
    assert "pbs-a" in body
    assert "healthy" in body
    detail = client.get(reverse("tenants:host", args=["pbs-a"])).content.decode()
    assert "store1" in detail
    assert client.get(reverse("tenants:host_new")).status_code == 403
    client.force_login(staff_user)
    assert client.get(reverse("tenants:host_new")).status_code == 200
    client.post(reverse("tenants:host_drift", args=["pbs-a"]))
    sim_host.refresh_from_db()
    assert sim_host.drift_checked_at is not None


def test_registering_a_host_checks_the_token_first(
    client: Any, staff_user: Any, pbs_sim: Any, pbs_admin_token: Any
) -> None:
    from tenants.pbs import install_transport, uninstall_transport

    url = "https://pbs-new.sim.invalid:8007"
    install_transport(url, pbs_sim.transport())
    try:
        client.force_login(staff_user)
        fp = ":".join(["cd"] * 32)
        form = {"name": "pbs-new", "url": url, "fingerprint": fp, "token_id": pbs_admin_token[0]}
        bad = client.post(reverse("tenants:host_new"), {**form, "token_secret": "wrong"})
        assert bad.status_code == 200
        assert "rejected the automation token" in bad.content.decode()
        good = client.post(reverse("tenants:host_new"), {**form, "token_secret": pbs_admin_token[1]})
        assert good.status_code == 302
    finally:
        uninstall_transport(url)
    from tenants.models import PbsHost

    host = PbsHost.objects.get(name="pbs-new")
    assert sorted(host.datastores.values_list("name", flat=True)) == ["store1", "store2"]
    assert host.supports_regenerate is True
    assert pbs_admin_token[1] not in host.token_secret_enc
