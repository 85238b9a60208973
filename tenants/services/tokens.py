"""Tenant tokens: backup token rotation, restore tokens, revoke, reveal once."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.permissions import can_view_tenant
from audit.services import audit_record
from core.actors import actor_or_none
from core.crypto import decrypt_secret, encrypt_secret
from pbsclient.errors import NotFound, PbsError
from tenants.models import (
    AclGrant,
    Tenant,
    TenantToken,
)
from tenants.naming import stored_names
from tenants.onboarding import (
    context_for,
    converge_acl,
    desired_roles,
    token_renew_secret,
)
from tenants.pbs import client_for_host
from tenants.services.base import TokenAlreadyRevealed, _lifecycle_error
from tenants.services.lifecycle import _lock_onboarded_tenant


def tenant_token_rotate(*, tenant_id: int, actor: Any = None) -> TenantToken:
    """A new secret for the backup token, to be revealed once.

    ``regenerate`` where the host supports it (keeps the token's ACLs), else delete +
    create + re-ACL. The old portal row is revoked (its secret, if still kept, wiped) and
    a new row holds the new secret.
    """
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED))
    names = stored_names(tenant)
    if tenant.host is None:
        raise ValidationError("The tenant has no PBS host.")
    try:
        with client_for_host(tenant.host) as client:
            ctx = context_for(tenant, client, actor=actor)
            enable = tenant.writes_allowed
            if ctx.state.token(names.userid, names.backup_token_name) is None:
                created = client.token_create(
                    names.userid, names.backup_token_name, comment=names.user_comment, enable=enable
                )
                secret, how = created.value, "created"
            else:
                secret, how = token_renew_secret(ctx, names.backup_token_name, enable=enable)
            # Keep a portal row for the secret before anything else can fail.
            with transaction.atomic():
                now = timezone.now()
                TenantToken.objects.filter(tenant=tenant, name=names.backup_token_name, revoked_at__isnull=True).update(
                    revoked_at=now, revoked_by=actor_or_none(actor), secret_enc="", enabled=False
                )
                row = TenantToken.objects.create(
                    tenant=tenant, purpose=TenantToken.Purpose.BACKUP, name=names.backup_token_name,
                    tokenid=names.backup_tokenid, comment=names.user_comment, enabled=enable,
                    created_by=actor_or_none(actor), secret_enc=encrypt_secret(secret), secret_stored_at=timezone.now(),
                )  # fmt: skip
                audit_record(
                    action="token.rotate", actor=actor, tenant=tenant, target=names.backup_tokenid,
                    detail={"method": how, "host": tenant.host.name},
                )  # fmt: skip
            if how != "regenerated":
                converge_acl(ctx, names.backup_tokenid, desired_roles(tenant, names.backup_tokenid, names))
    except PbsError as exc:
        audit_record(action="token.rotate", actor=actor, tenant=tenant, target=names.backup_tokenid,
                     result="failed", detail={"error": str(exc)[:500]})  # fmt: skip
        raise _lifecycle_error(exc, host=tenant.host, step="backup_token") from exc
    return row


def token_revoke(*, token_id: int, actor: Any = None) -> TenantToken:
    """Delete the token on PBS (its ACLs go with it) and revoke it in the portal."""
    token = TenantToken.objects.select_related("tenant__host").get(pk=token_id)
    if token.revoked_at is not None:
        return token
    tenant = token.tenant
    if actor is not None and not can_view_tenant(actor, tenant):
        raise ValidationError("Not your tenant's token.")
    userid = token.tokenid.split("!", 1)[0]
    if tenant.host is not None and tenant.status != Tenant.Status.OFFBOARDED:
        try:
            with client_for_host(tenant.host) as client, contextlib.suppress(NotFound):
                client.token_delete(userid, token.name)
        except PbsError as exc:
            raise _lifecycle_error(exc, host=tenant.host, step="backup_token") from exc
    with transaction.atomic():
        TenantToken.objects.filter(pk=token.pk).update(
            revoked_at=timezone.now(), revoked_by=actor_or_none(actor), secret_enc="", enabled=False
        )
        AclGrant.objects.filter(tenant=tenant, auth_id=token.tokenid).delete()
        audit_record(action="token.revoked", actor=actor, tenant=tenant, target=token.tokenid,
                     detail={"token_id": token.pk, "purpose": token.purpose})  # fmt: skip
    token.refresh_from_db()
    return token


def _secret_deadline() -> Any:
    return timezone.now() - timedelta(days=settings.PORTAL_SECRET_REVEAL_DAYS)


def token_secret_expired(token: TenantToken) -> bool:
    """A kept secret nobody revealed within PORTAL_SECRET_REVEAL_DAYS is no longer shown."""
    stored = token.secret_stored_at or token.created_at
    return bool(token.secret_enc) and stored is not None and stored < _secret_deadline()


def token_secrets_expire() -> int:
    """Destroy every kept secret past its reveal deadline (beat, daily); returns how many.
    The token itself stays valid on PBS: staff rotate it to hand out a new secret."""
    stale = TenantToken.objects.exclude(secret_enc="").filter(
        Q(secret_stored_at__lt=_secret_deadline()) | Q(secret_stored_at__isnull=True, created_at__lt=_secret_deadline())
    )
    return sum(_secret_destroy(token) for token in stale.select_related("tenant"))


def _secret_destroy(token: TenantToken, actor: Any = None) -> bool:
    """Wipe one expired secret with its audit row; False if it was already gone."""
    with transaction.atomic():
        if not TenantToken.objects.filter(pk=token.pk).exclude(secret_enc="").update(secret_enc=""):
            return False
        audit_record(action="token.secret_expired", actor=actor, tenant=token.tenant, target=token.tokenid,
                     detail={"days": settings.PORTAL_SECRET_REVEAL_DAYS})  # fmt: skip
    return True


def token_reveal(*, token_id: int, actor: Any = None, via: str = "web") -> str:
    """Return a token's secret exactly once, then destroy it (revealed_at/by recorded).

    Race-safe: the row is locked and the wipe is a conditional update, so two concurrent
    reveals give the secret to one of them and TokenAlreadyRevealed to the other.
    """
    with transaction.atomic():
        token = (
            TenantToken.objects.select_for_update(of=("self",)).select_related("tenant", "revealed_by").get(pk=token_id)
        )
        if actor is not None and not can_view_tenant(actor, token.tenant):
            raise ValidationError("Not your tenant's token.")
        if token.revoked_at is not None:
            raise ValidationError("This token was revoked; its secret is gone.")
        if not token.secret_enc:
            raise TokenAlreadyRevealed(token)
        expired = token_secret_expired(token)
        if not expired:
            ciphertext = token.secret_enc
            wiped = TenantToken.objects.filter(pk=token.pk, secret_enc=ciphertext).update(
                secret_enc="", revealed_at=timezone.now(), revealed_by=actor_or_none(actor)
            )
            if not wiped:
                token.refresh_from_db()
                raise TokenAlreadyRevealed(token)
            audit_record(action="token.revealed", actor=actor, tenant=token.tenant, target=token.tokenid,
                         detail={"via": via})  # fmt: skip
            return decrypt_secret(ciphertext)
    # Past its reveal deadline: destroyed (committed), and the caller is told to rotate.
    _secret_destroy(token, actor)
    raise ValidationError(
        f"This secret was never revealed within {settings.PORTAL_SECRET_REVEAL_DAYS} days and has been "
        "destroyed. Rotate the token to get a new secret."
    )
