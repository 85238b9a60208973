"""The second factor (TOTP): enrol, confirm, disable, reset."""

from __future__ import annotations

import secrets
from typing import Any

import pyotp
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User
from accounts.services.base import TOTP_ISSUER, TOTP_VALID_WINDOW, _tenant_of
from audit.services import audit_record
from core.crypto import decrypt_secret, encrypt_secret


class TotpError(ValueError):
    """A TOTP enrolment step cannot be done (message is for the user)."""


def totp_provisioning_uri(*, user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app imports (shown as text, no QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.get_username(), issuer_name=TOTP_ISSUER)


def totp_pending_secret(*, user: User) -> str:
    """The seed of an enrolment that is started but not confirmed ('' if none)."""
    if user.totp_confirmed_at or not user.totp_secret_enc:
        return ""
    return decrypt_secret(user.totp_secret_enc)


def totp_enrolment_start(*, user: User) -> str:
    """Create a new seed (kept encrypted, unconfirmed) and return it for display."""
    if user.has_totp:
        raise TotpError("A second factor is already set up. Turn it off first to replace it.")
    secret = pyotp.random_base32()
    user.totp_secret_enc = encrypt_secret(secret)
    user.totp_confirmed_at = None
    user.totp_last_step = None
    user.save(update_fields=["totp_secret_enc", "totp_confirmed_at", "totp_last_step"])
    return secret


def _totp_step(code: str, secret: str) -> int | None:
    """The time step ``code`` is valid for (within the window), or None."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = timezone.now()
    current = totp.timecode(now)
    for offset in range(-TOTP_VALID_WINDOW, TOTP_VALID_WINDOW + 1):
        step = current + offset
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _totp_claim_step(user: User, step: int) -> bool:
    """Record ``step`` as used; False if it (or a later one) was used already: no replay."""
    claimed = (
        User.objects.filter(pk=user.pk)
        .filter(Q(totp_last_step__isnull=True) | Q(totp_last_step__lt=step))
        .update(totp_last_step=step)
    )
    if claimed:
        user.totp_last_step = step
    return claimed == 1


def totp_verify(*, user: User, code: str) -> bool:
    """True if ``code`` is a current, unused code of the user's confirmed seed."""
    if not user.has_totp:
        return False
    step = _totp_step(code, decrypt_secret(user.totp_secret_enc))
    return step is not None and _totp_claim_step(user, step)


def totp_enrolment_confirm(*, user: User, code: str, ip: str | None) -> None:
    """Confirm a started enrolment with a first code from the app."""
    secret = totp_pending_secret(user=user)
    if not secret:
        raise TotpError("Start the set-up first.")
    step = _totp_step(code, secret)
    if step is None:
        raise TotpError("That code is not valid. Check the time on your phone and try again.")
    with transaction.atomic():
        user.totp_confirmed_at = timezone.now()
        user.totp_last_step = step
        user.save(update_fields=["totp_confirmed_at", "totp_last_step"])
        audit_record(
            action="totp.enabled",
            actor=user,
            tenant=_tenant_of(user),
            target=user.get_username(),
            ip_address=ip,
        )


def totp_required_for(user: User) -> bool:
    return bool(settings.PORTAL_REQUIRE_STAFF_TOTP and user.role != Role.CLIENT)


def totp_disable(*, user: User, code: str, ip: str | None) -> None:
    """Turn the second factor off; needs a current code, and is refused when policy requires it."""
    if totp_required_for(user):
        raise TotpError("Your role must use a second factor; it cannot be turned off.")
    if not user.has_totp:
        # Abandon a started enrolment.
        user.totp_secret_enc = ""
        user.save(update_fields=["totp_secret_enc"])
        return
    if not totp_verify(user=user, code=code):
        raise TotpError("That code is not valid.")
    with transaction.atomic():
        user.totp_secret_enc = ""
        user.totp_confirmed_at = None
        user.totp_last_step = None
        user.save(update_fields=["totp_secret_enc", "totp_confirmed_at", "totp_last_step"])
        audit_record(
            action="totp.disabled",
            actor=user,
            tenant=_tenant_of(user),
            target=user.get_username(),
            ip_address=ip,
        )


def totp_reset(*, user: User, actor: Any, ip: str | None = None) -> None:
    """Staff reset of a user's lost second factor (the user enrols again on next sign-in)."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(
            totp_secret_enc="", totp_confirmed_at=None, totp_last_step=None
        )
        audit_record(
            action="totp.reset",
            actor=actor,
            tenant=_tenant_of(user),
            target=user.get_username(),
            ip_address=ip,
        )
