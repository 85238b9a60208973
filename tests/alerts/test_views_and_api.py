"""Staff pages and the /api/v1/alerts/ API: who may see and do what, and constant queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import services
from alerts.models import Alert, QuotaState
from audit.models import AuditEvent
from tests.alerts.conftest import add_sample, make_plan_quota
from tests.factories import make_tenant


def raise_for(tenant, kind=Alert.Kind.BACKUP_STALE, key=""):
    return services.alert_raise(tenant=tenant, kind=kind, key=key, title=f"{kind} {tenant.slug}")


@pytest.fixture
def over_quota(tenant_a, tenant_b):
    """Both tenants over a bill-overage quota (grace running)."""
    quota = make_plan_quota(soft_gib="100", hard_gib="150", action="bill-overage")
    for tenant in (tenant_a, tenant_b):
        tenant.plan = quota.plan
        tenant.save()
        sample = add_sample(tenant, day=timezone.localdate(), gib=120)
        services.quota_evaluate_tenant(tenant_id=tenant.pk, sample_id=sample.pk)
    return quota


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# --- HTML pages ------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_see_the_dashboard_with_open_alerts_and_quota_problems(client, staff_user, tenant_a, over_quota):
    raise_for(tenant_a)
    client.force_login(staff_user)
    response = client.get(reverse("alerts:dashboard"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "backup_stale tenant-a" in body
    assert "Over (grace running)" in body


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["client_a", "accounting_user"])
def test_clients_and_accounting_are_refused_the_dashboard(client, request, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("alerts:dashboard")).status_code == 403


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("alerts:dashboard"))
    assert response.status_code == 302
    assert reverse("accounts:login") in response["Location"]


@pytest.mark.django_db
def test_an_htmx_filter_request_gets_only_the_table(client, operator_user, tenant_a, tenant_b):
    raise_for(tenant_a)
    raise_for(tenant_b, kind=Alert.Kind.VERIFY_FAILED, key="vm/100")
    client.force_login(operator_user)
    query = {"kind": "verify_failed", "status": "open"}
    response = client.get(reverse("alerts:dashboard"), query, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="alert-table"' in body
    assert "verify_failed tenant-b" in body
    assert "backup_stale tenant-a" not in body


@pytest.mark.django_db
def test_the_dashboard_query_count_does_not_grow_with_alerts(client, staff_user, tenant_a, over_quota):
    client.force_login(staff_user)
    raise_for(tenant_a)
    url = reverse("alerts:dashboard")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(15):
        raise_for(make_tenant(datastore=tenant_a.datastore), key=str(i))
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.content.decode().count("<tr>") > 15
    assert len(many) == len(few)


@pytest.mark.django_db
def test_staff_extend_a_grace_from_the_tenant_page(client, staff_user, tenant_a, over_quota):
    client.force_login(staff_user)
    page = client.get(reverse("alerts:quota", args=[tenant_a.pk]))
    assert page.status_code == 200
    until = (timezone.localtime() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("alerts:quota-extend", args=[tenant_a.pk]), {"until": until, "reason": "migration"}
    )
    assert response.status_code == 302
    state = QuotaState.objects.get(tenant=tenant_a)
    assert state.grace_extension_reason == "migration"
    assert state.grace_extended_by == staff_user


@pytest.mark.django_db
def test_a_client_cannot_open_or_change_the_staff_quota_page(client, client_a, tenant_a, over_quota):
    client.force_login(client_a)
    assert client.get(reverse("alerts:quota", args=[tenant_a.pk])).status_code == 403
    response = client.post(reverse("alerts:quota-exempt", args=[tenant_a.pk]), {"exempt": "on", "reason": "me"})
    assert response.status_code == 403
    assert not QuotaState.objects.get(tenant=tenant_a).exempt


@pytest.mark.django_db
def test_a_new_webhook_secret_is_shown_once_and_not_cached(client, staff_user, tenant_a):
    client.force_login(staff_user)
    response = client.post(
        reverse("alerts:webhook", args=[tenant_a.pk]), {"url": "https://psa.example/hook", "enabled": "on"}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert 'id="webhook-secret"' in response.content.decode()
    again = client.post(
        reverse("alerts:webhook", args=[tenant_a.pk]), {"url": "https://psa.example/hook", "enabled": "on"}
    )
    assert again.status_code == 302, "an existing secret is not shown again"


@pytest.mark.django_db
def test_the_tenant_partial_lists_only_that_tenants_open_alerts(tenant_a, tenant_b):
    from django.template.loader import render_to_string

    from alerts.selectors import open_alerts_for_tenant

    raise_for(tenant_a)
    raise_for(tenant_b, kind=Alert.Kind.VERIFY_FAILED)
    html = render_to_string("alerts/_tenant_alerts.html", {"tenant_alerts": open_alerts_for_tenant(tenant_a.pk)})
    assert "backup_stale tenant-a" in html
    assert "tenant-b" not in html


# --- API -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_client_lists_only_its_own_tenants_alerts(client_a, tenant_a, tenant_b):
    raise_for(tenant_a)
    raise_for(tenant_b)
    response = api(client_a).get("/api/v1/alerts/")
    assert response.status_code == 200
    assert [row["tenant_slug"] for row in response.json()["results"]] == ["tenant-a"]
    filtered = api(client_a).get("/api/v1/alerts/", {"tenant": tenant_b.pk})
    assert filtered.json()["results"] == []


@pytest.mark.django_db
def test_a_client_cannot_read_another_tenants_quota(client_a, tenant_a, tenant_b, over_quota):
    assert api(client_a).get(f"/api/v1/alerts/quotas/{tenant_a.pk}/").status_code == 200
    assert api(client_a).get(f"/api/v1/alerts/quotas/{tenant_b.pk}/").status_code == 404  # not found, not forbidden
    listed = api(client_a).get("/api/v1/alerts/quotas/").json()["results"]
    assert [row["tenant_slug"] for row in listed] == ["tenant-a"]


@pytest.mark.django_db
def test_only_staff_extend_a_grace_over_the_api(client_a, staff_user, tenant_a, over_quota):
    until = (timezone.now() + timedelta(days=30)).isoformat()
    refused = api(client_a).post(
        f"/api/v1/alerts/quotas/{tenant_a.pk}/extend-grace/", {"until": until, "reason": "x"}, format="json"
    )
    assert refused.status_code == 403
    response = api(staff_user).post(
        f"/api/v1/alerts/quotas/{tenant_a.pk}/extend-grace/", {"until": until, "reason": "board approved"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["grace_extension_reason"] == "board approved"
    assert AuditEvent.objects.filter(action="quota.grace_extended", actor=staff_user).count() == 1


@pytest.mark.django_db
def test_an_action_without_a_reason_is_refused(staff_user, tenant_a, over_quota):
    response = api(staff_user).post(
        f"/api/v1/alerts/quotas/{tenant_a.pk}/exempt/", {"exempt": True, "reason": "   "}, format="json"
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_staff_exempt_a_tenant_over_the_api(operator_user, tenant_a, over_quota):
    response = api(operator_user).post(
        f"/api/v1/alerts/quotas/{tenant_a.pk}/exempt/", {"exempt": True, "reason": "key account"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["exempt"] is True


@pytest.mark.django_db
def test_plan_quotas_are_for_msp_admins_only(operator_user, staff_user, over_quota):
    body = {"soft_limit_gib": "200", "hard_limit_gib": "300", "action": "stop-writes"}
    url = f"/api/v1/alerts/plans/{over_quota.plan_id}/quota/"
    assert api(operator_user).put(url, body, format="json").status_code == 403
    response = api(staff_user).put(url, body, format="json")
    assert response.status_code == 200
    assert response.json()["action"] == "stop-writes"


@pytest.mark.django_db
def test_the_tenant_override_api_reevaluates(staff_user, tenant_a, over_quota):
    url = f"/api/v1/alerts/quotas/{tenant_a.pk}/override/"
    response = api(staff_user).put(url, {"soft_limit_gib": "500", "hard_limit_gib": None}, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "ok"
    assert api(staff_user).delete(url).json()["state"] == "over"


@pytest.mark.django_db
def test_the_webhook_api_returns_a_new_secret_once(staff_user, client_a, tenant_a):
    url = f"/api/v1/alerts/webhooks/{tenant_a.pk}/"
    assert api(client_a).put(url, {"url": "https://psa.example/h"}, format="json").status_code == 403
    first = api(staff_user).put(url, {"url": "https://psa.example/h"}, format="json")
    assert first.status_code == 200
    assert len(first.json()["secret"]) >= 32
    second = api(staff_user).put(url, {"url": "https://psa.example/h2"}, format="json")
    assert "secret" not in second.json()


@pytest.mark.django_db
def test_the_alert_api_query_count_is_constant(staff_user, tenant_a):
    client = api(staff_user)
    raise_for(tenant_a)
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/alerts/")
    for i in range(10):
        raise_for(make_tenant(datastore=tenant_a.datastore), key=str(i))
    with CaptureQueriesContext(connection) as many:
        response = client.get("/api/v1/alerts/")
    assert response.json()["count"] == 11
    assert len(many) == len(few)


@pytest.mark.django_db
def test_the_quota_api_query_count_is_constant(staff_user, tenant_a, over_quota):
    client = api(staff_user)
    with CaptureQueriesContext(connection) as few:
        client.get("/api/v1/alerts/quotas/")
    for _ in range(10):
        tenant = make_tenant(datastore=tenant_a.datastore, plan=over_quota.plan)
        services.quota_evaluate_tenant(tenant_id=tenant.pk, usage_bytes=10 * 2**30)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/api/v1/alerts/quotas/")
    assert response.json()["count"] == 12
    assert len(many) == len(few)
