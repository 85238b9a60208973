"""No list API serialises a whole table at once: ``?limit=`` is capped (core.pagination)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from audit.services import audit_record
from core.pagination import MAX_PAGE_SIZE, BoundedLimitOffsetPagination
from tests.factories import make_tenant

pytestmark = pytest.mark.django_db


def test_the_ceiling_is_a_few_hundred_rows() -> None:
    assert BoundedLimitOffsetPagination.max_limit == MAX_PAGE_SIZE <= 500


@pytest.mark.parametrize("path", ["/api/v1/tenants/", "/api/v1/audit/", "/api/v1/alerts/"])
def test_every_list_api_caps_the_page(path: str, staff_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BoundedLimitOffsetPagination, "max_limit", 2)
    for n in range(4):
        tenant = make_tenant(slug=f"t{n}")
        audit_record(action="test.row", actor=None, tenant=tenant, target=str(n))
        if path == "/api/v1/alerts/":
            from alerts.services import alert_raise

            alert_raise(tenant=tenant, kind="backup_age", title="old", key=str(n))
    api = APIClient()
    api.force_authenticate(staff_user)
    response = api.get(path, {"limit": 100000})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] >= 4
    assert len(body["results"]) == 2
