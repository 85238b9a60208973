"""API keys replace DRF's plaintext, non-expiring tokens: made by a user for themself on the
security page (shown once), kept as a digest, named, expiring, revocable, and every change made
with one names the key in the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from audit.models import AuditEvent
from tests.factories import make_datastore, make_host

pytestmark = pytest.mark.django_db


def _create_key(user: Any, name: str = "backup-script", days: int = 30) -> str:
    web = Client()
    web.force_login(user)
    response = web.post("/accounts/security/api-keys/", {"name": name, "days": str(days)})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    match = re.search(r"pbp_[0-9a-f]{12}_[A-Za-z0-9_-]+", response.content.decode())
    assert match
    assert match.group(0) not in web.get("/accounts/security/").content.decode(), "shown once"
    return match.group(0)


def _api(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def test_the_authtoken_app_is_gone() -> None:
    assert "rest_framework.authtoken" not in settings.INSTALLED_APPS
    assert all("TokenAuthentication" not in c for c in settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"])


def test_a_key_is_kept_as_a_digest_and_works_as_its_user(staff_user: Any) -> None:
    key = _create_key(staff_user)
    row = ApiKey.objects.get(user=staff_user)
    assert key not in (row.digest, row.prefix)
    assert _api(key).get("/api/v1/tenants/").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_changes_made_with_a_key_name_it_in_the_audit_trail(staff_user: Any) -> None:
    key = _create_key(staff_user, name="terraform")
    host = make_host(name="pbs-a")
    make_datastore(host=host, name="store1")
    body = {"slug": "acme", "name": "Acme", "datastore": "store1"}
    response = _api(key).post("/api/v1/tenants/", body, format="json")
    assert response.status_code == 201, response.content
    event = AuditEvent.objects.filter(action__startswith="tenant.").latest("id")
    assert event.actor == staff_user
    assert event.detail["api_key"].startswith("terraform (")


def test_revoked_and_expired_keys_are_refused(staff_user: Any) -> None:
    key = _create_key(staff_user)
    row = ApiKey.objects.get(user=staff_user)
    ApiKey.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _api(key).get("/api/v1/tenants/").status_code in (401, 403)
    ApiKey.objects.filter(pk=row.pk).update(expires_at=timezone.now() + timedelta(days=1))
    web = Client()
    web.force_login(staff_user)
    web.post(f"/accounts/security/api-keys/{row.pk}/revoke/")
    assert _api(key).get("/api/v1/tenants/").status_code in (401, 403)
    assert AuditEvent.objects.filter(action="api_key.revoked").exists()


def test_a_clients_key_is_a_clients_key(client_a: Any, tenant_b: Any) -> None:
    key = _create_key(client_a)
    assert _api(key).get("/api/v1/tenants/").status_code == 403  # no staff API for a client key
    assert _api(key).get(f"/api/v1/alerts/quotas/{tenant_b.pk}/").status_code == 404


def test_a_user_cannot_revoke_someone_elses_key(staff_user: Any, operator_user: Any) -> None:
    _create_key(staff_user)
    row = ApiKey.objects.get(user=staff_user)
    web = Client()
    web.force_login(operator_user)
    assert web.post(f"/accounts/security/api-keys/{row.pk}/revoke/").status_code == 404


def test_the_security_page_shows_the_keys_section_once_in_its_body(staff_user: Any) -> None:
    web = Client()
    web.force_login(staff_user)
    html = web.get("/accounts/security/").content.decode()
    title = html.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "API keys" not in title
    assert html.count('id="api-keys"') == 1
