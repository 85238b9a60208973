"""A token secret kept for its one reveal does not live forever: unrevealed after
PORTAL_SECRET_REVEAL_DAYS it is destroyed (daily, and refused at reveal time even before the
daily task ran); the token stays valid on PBS and staff rotate it for a new secret."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from tenants import services
from tenants.models import TenantToken


def _backup_token(tenant: Any) -> TenantToken:
    return TenantToken.objects.get(tenant=tenant, purpose=TenantToken.Purpose.BACKUP, revoked_at__isnull=True)


def test_an_unrevealed_secret_expires_and_is_destroyed(onboard: Any, settings: Any) -> None:
    settings.PORTAL_SECRET_REVEAL_DAYS = 14
    tenant = onboard("acme")
    token = _backup_token(tenant)
    assert token.secret_enc
    TenantToken.objects.filter(pk=token.pk).update(secret_stored_at=timezone.now() - timedelta(days=15))

    with pytest.raises(ValidationError, match="Rotate the token"):
        services.token_reveal(token_id=token.pk)
    token.refresh_from_db()
    assert token.secret_enc == ""
    assert AuditEvent.objects.filter(action="token.secret_expired", target=token.tokenid).exists()


def test_the_daily_task_destroys_only_expired_secrets(onboard: Any, settings: Any) -> None:
    settings.PORTAL_SECRET_REVEAL_DAYS = 14
    old, fresh = _backup_token(onboard("acme")), _backup_token(onboard("globex"))
    TenantToken.objects.filter(pk=old.pk).update(secret_stored_at=timezone.now() - timedelta(days=20))
    assert services.token_secrets_expire() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.secret_enc == ""
    assert fresh.secret_enc
    assert services.token_reveal(token_id=fresh.pk)


def test_rotating_gives_a_fresh_secret_to_reveal(onboard: Any, settings: Any) -> None:
    tenant = onboard("acme")
    token = _backup_token(tenant)
    TenantToken.objects.filter(pk=token.pk).update(secret_stored_at=timezone.now() - timedelta(days=30))
    services.token_secrets_expire()
    rotated = services.tenant_token_rotate(tenant_id=tenant.pk)
    assert services.token_reveal(token_id=rotated.pk)
