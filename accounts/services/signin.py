"""Sign-in: password, then the second factor, audited."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate

from accounts.models import User
from accounts.services.base import _tenant_of
from accounts.services.throttle import login_attempt_reserve, login_lock_remaining, login_success_record
from accounts.services.totp import totp_verify
from audit.models import AuditEvent
from audit.services import audit_record


class LoginOutcome(StrEnum):
    OK = "ok"  # password fine, no second factor: log in now
    NEEDS_TOTP = "needs_totp"  # password fine, ask for the code next
    FAILED = "failed"
    LOCKED = "locked"


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    user: User | None = None
    retry_after: int = 0


def _audited_name(username: str) -> str:
    """The name a failed sign-in is audited under. An existing account's name as it is; any
    other text only as its first three characters and a keyed hash, because a "username" that
    names no account is often a password typed into the wrong field. The hash still lets staff
    see repeated attempts with the same text."""
    if User.objects.filter(username=username).exists():
        return username
    digest = hmac.new(settings.SECRET_KEY.encode(), username.encode(), hashlib.sha256).hexdigest()[:12]
    return f"{username[:3]}…#{digest}"


def login_attempt(
    *, request: Any, username: str, password: str, ip: str | None
) -> LoginResult:
    """Check a username and password under the throttle.

    Steps: refuse at once while the account name or the IP is locked (the password is not
    even checked); reserve the attempt atomically (count it first, so parallel guesses
    cannot all pass the check); authenticate; on failure keep the count (maybe starting a
    lockout) and audit; on success give it back and clear the account counter. The caller
    logs the user in (OK) or asks for the second factor (NEEDS_TOTP); ``login_completed`` writes the success audit row.
    """
    remaining = login_lock_remaining(username=username, ip=ip)
    if remaining:
        audit_record(
            action="login.failed",
            target=_audited_name(username),
            result=AuditEvent.Result.DENIED,
            detail={"reason": "locked", "retry_after": remaining},
            ip_address=ip,
        )
        return LoginResult(LoginOutcome.LOCKED, retry_after=remaining)

    reservation = login_attempt_reserve(username=username, ip=ip)
    if not reservation.allowed:  # a parallel attempt used the last one
        retry_after = login_lock_remaining(username=username, ip=ip)
        retry_after = retry_after or settings.PORTAL_LOGIN_LOCKOUT_SECONDS
        audit_record(
            action="login.failed",
            target=_audited_name(username),
            result=AuditEvent.Result.DENIED,
            detail={"reason": "locked", "retry_after": retry_after},
            ip_address=ip,
        )
        return LoginResult(LoginOutcome.LOCKED, retry_after=retry_after)

    user = authenticate(request, username=username, password=password)
    if user is None:
        audited = _audited_name(username)
        audit_record(
            action="login.failed",
            target=audited,
            result=AuditEvent.Result.FAILED,
            detail={"reason": "bad credentials"},
            ip_address=ip,
        )
        if reservation.locks:
            audit_record(
                action="login.lockout",
                target=audited,
                result=AuditEvent.Result.DENIED,
                detail={"seconds": settings.PORTAL_LOGIN_LOCKOUT_SECONDS},
                ip_address=ip,
            )
            return LoginResult(
                LoginOutcome.LOCKED, retry_after=settings.PORTAL_LOGIN_LOCKOUT_SECONDS
            )
        return LoginResult(LoginOutcome.FAILED)

    if user.has_totp:
        return LoginResult(LoginOutcome.NEEDS_TOTP, user=user)
    return LoginResult(LoginOutcome.OK, user=user)  # login_completed gives the attempt back


def login_completed(*, user: User, ip: str | None, second_factor: bool) -> None:
    """Audit a finished sign-in (called by the view after ``django.contrib.auth.login``)."""
    login_success_record(username=user.get_username(), ip=ip)
    audit_record(
        action="login.succeeded",
        actor=user,
        tenant=_tenant_of(user),
        target=user.get_username(),
        detail={"second_factor": "totp" if second_factor else "none"},
        ip_address=ip,
    )


def login_totp_attempt(*, user: User, code: str, ip: str | None) -> LoginResult:
    """Second step of sign-in: check the TOTP code under the same account throttle."""
    username = user.get_username()
    remaining = login_lock_remaining(username=username, ip=ip)
    if remaining:
        audit_record(
            action="login.failed",
            target=username,
            tenant=_tenant_of(user),
            result=AuditEvent.Result.DENIED,
            detail={"reason": "locked", "step": "totp", "retry_after": remaining},
            ip_address=ip,
        )
        return LoginResult(LoginOutcome.LOCKED, retry_after=remaining)
    reservation = login_attempt_reserve(username=username, ip=ip)
    if reservation.allowed and totp_verify(user=user, code=code):
        return LoginResult(LoginOutcome.OK, user=user)
    audit_record(
        action="login.failed",
        target=username,
        tenant=_tenant_of(user),
        result=AuditEvent.Result.FAILED if reservation.allowed else AuditEvent.Result.DENIED,
        detail={"reason": "bad second factor" if reservation.allowed else "locked", "step": "totp"},
        ip_address=ip,
    )
    if reservation.locks or not reservation.allowed:
        if reservation.locks:
            audit_record(
                action="login.lockout",
                target=username,
                tenant=_tenant_of(user),
                result=AuditEvent.Result.DENIED,
                detail={"seconds": settings.PORTAL_LOGIN_LOCKOUT_SECONDS, "step": "totp"},
                ip_address=ip,
            )
        return LoginResult(LoginOutcome.LOCKED, retry_after=settings.PORTAL_LOGIN_LOCKOUT_SECONDS)
    return LoginResult(LoginOutcome.FAILED)
