"""Clients see their own quota figures, never staff-internal text, and another tenant's quota
does not exist for them (404, not 403)."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from alerts.models import QuotaState

pytestmark = pytest.mark.django_db

INTERNAL = ("https://pbs-internal.example.net:8007", "VIP customer, CEO asked", "board decision")


def _state(tenant: Any) -> QuotaState:
    return QuotaState.objects.create(
        tenant=tenant, state=QuotaState.State.OVER,
        usage_bytes=10, exempt=True, exempt_reason=INTERNAL[1], grace_extension_reason=INTERNAL[2],
        pbs_error=f"connection to {INTERNAL[0]} failed",
    )  # fmt: skip


def test_a_client_sees_its_figures_without_staff_text(client_a: Any, tenant_a: Any, staff_user: Any) -> None:
    _state(tenant_a)
    api = APIClient()
    api.force_authenticate(client_a)
    for body in (api.get(f"/api/v1/alerts/quotas/{tenant_a.pk}/").content, api.get("/api/v1/alerts/quotas/").content):
        text = body.decode()
        assert '"usage_bytes":10' in text.replace(" ", "")
        for secret in INTERNAL:
            assert secret not in text
        for field in ("pbs_error", "exempt_reason", "grace_extension_reason"):
            assert field not in text
    staff = APIClient()
    staff.force_authenticate(staff_user)
    assert INTERNAL[0] in staff.get(f"/api/v1/alerts/quotas/{tenant_a.pk}/").content.decode()


def test_another_tenants_quota_is_not_found_for_a_client(client_a: Any, tenant_b: Any) -> None:
    _state(tenant_b)
    api = APIClient()
    api.force_authenticate(client_a)
    assert api.get(f"/api/v1/alerts/quotas/{tenant_b.pk}/").status_code == 404
