"""API keys: made by a user for themself on the security page, shown once, kept as a digest,
expiring and revocable; both audited."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, User
from accounts.services.base import _tenant_of
from audit.services import audit_record

KEY_PREFIX = "pbp_"
# last_used_at is written at most this often per key (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewApiKey:
    """The new key's row and the key itself (the only object that ever holds it)."""

    key: ApiKey
    plaintext: str = field(repr=False)


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_create(*, user: User, name: str, days: int, ip: str | None = None) -> NewApiKey:
    """Make a key for ``user`` (the signed-in user, for themself) valid for ``days`` days."""
    name = name.strip()
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 64:
        errors["name"] = ["Give the key a name of 1 to 64 characters (what uses it)."]
    max_days = settings.PORTAL_API_KEY_MAX_DAYS
    if not 1 <= days <= max_days:
        errors["days"] = [f"Choose a lifetime between 1 and {max_days} days."]
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            user=user, name=name, prefix=prefix, digest=_digest(plaintext),
            expires_at=timezone.now() + timedelta(days=days),
        )  # fmt: skip
        audit_record(
            action="api_key.created", actor=user, tenant=_tenant_of(user), target=f"{name} ({prefix})",
            detail={"days": days, "role": user.role}, ip_address=ip,
        )  # fmt: skip
    return NewApiKey(key=key, plaintext=plaintext)


def api_key_revoke(*, key: ApiKey, actor: User, ip: str | None = None) -> bool:
    """Revoke one of the actor's own keys; True if this call revoked it."""
    if key.user_id != actor.pk:
        raise ValidationError("Not your key.")
    with transaction.atomic():
        if not ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
            return False
        audit_record(
            action="api_key.revoked", actor=actor, tenant=_tenant_of(actor), target=f"{key.name} ({key.prefix})",
            ip_address=ip,
        )  # fmt: skip
    return True


def api_key_authenticate(plaintext: str) -> ApiKey | None:
    """The usable key this text is, or None. Constant-time on the digest; unknown prefixes,
    revoked or expired keys and inactive users all give None."""
    if not plaintext.startswith(KEY_PREFIX) or plaintext.count("_") < 2:
        return None
    prefix = plaintext[len(KEY_PREFIX):].split("_", 1)[0]
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.digest, _digest(plaintext)):
        return None
    if not key.is_usable or not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or key.last_used_at < now - LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key
