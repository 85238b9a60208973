"""Staff and clients make restore tokens through one service: the same steps, the same rights
check, the same audit vocabulary. They differ only in what happens to the secret."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import Role
from audit.models import AuditEvent
from tenants.models import TenantToken
from tests.factories import make_user


def _actions(tokenid: str) -> list[str]:
    return sorted(AuditEvent.objects.filter(target=tokenid).values_list("action", flat=True))


def test_staff_and_client_restore_tokens_are_audited_alike(sim_tenants: Any) -> None:
    staff = make_user(role=Role.ADMIN, username="staff-one")
    web = Client()
    web.force_login(staff)
    response = web.post(f"/tenants/{sim_tenants.tenant_a.slug}/tokens/restore/", {"name": "staffmade", "days": "5"})
    assert response.status_code == 302
    staff_token = TenantToken.objects.get(name="restore-staffmade")

    web = Client()
    web.force_login(sim_tenants.client_a)
    response = web.post("/my/tokens/create/", {"name": "clientmade", "days": "5"})
    assert response.status_code == 201
    client_token = TenantToken.objects.get(name="restore-clientmade")

    # Same vocabulary: created; the client's secret was shown in the response (revealed), the
    # staff secret waits for its one reveal.
    assert _actions(staff_token.tokenid) == ["token.created"]
    assert _actions(client_token.tokenid) == ["token.created", "token.revealed"]
    # Same steps: both had their effective rights checked on PBS before they were recorded.
    for token in (staff_token, client_token):
        assert token.privileges_checked_at is not None
        assert token.effective_privileges
    assert staff_token.secret_enc
    assert not client_token.secret_enc

    web = Client()
    web.force_login(staff)
    web.post(f"/tenants/{sim_tenants.tenant_a.slug}/tokens/{staff_token.pk}/revoke/")
    web = Client()
    web.force_login(sim_tenants.client_a)
    web.post(f"/my/tokens/{client_token.pk}/revoke/")
    assert _actions(staff_token.tokenid) == ["token.created", "token.revoked"]
    assert _actions(client_token.tokenid) == ["token.created", "token.revealed", "token.revoked"]
