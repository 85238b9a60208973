"""Writes for accounts: sign-in (throttle, lockout, second factor), TOTP, invitations,
removing users. Every function here writes its audit row itself, with the acting user.

Nothing in this module logs or audits a secret: passwords, TOTP seeds and codes, and
invitation tokens only ever pass through as arguments.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import pyotp
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, LoginThrottle, Role, User
from accounts.permissions import STAFF, has_role
from audit.models import AuditEvent
from audit.services import audit_record
from core.crypto import decrypt_secret, encrypt_secret

logger = logging.getLogger(__name__)

TOTP_ISSUER = "PBS Portal"
# Accept the previous and next 30-second code too (clock drift between phone and server).
TOTP_VALID_WINDOW = 1


# --- sign-in throttling -------------------------------------------------------


def _window() -> timedelta:
    return timedelta(seconds=settings.PORTAL_LOGIN_LOCKOUT_SECONDS)


def _limit(scope: str) -> int:
    if scope == LoginThrottle.Scope.IP:
        return settings.PORTAL_LOGIN_MAX_FAILURES_PER_IP
    return settings.PORTAL_LOGIN_MAX_FAILURES


def _account_key(username: str) -> str:
    return username.strip().lower()[:150]


def _keys(*, username: str, ip: str | None) -> list[tuple[str, str]]:
    keys = [(LoginThrottle.Scope.ACCOUNT, _account_key(username))]
    if ip:
        keys.append((LoginThrottle.Scope.IP, ip))
    return keys


def login_lock_remaining(*, username: str, ip: str | None) -> int:
    """Seconds until neither this account name nor this IP is locked out (0: not locked)."""
    now = timezone.now()
    query = Q()
    for scope, key in _keys(username=username, ip=ip):
        query |= Q(scope=scope, key=key)
    until = (
        LoginThrottle.objects.filter(query, locked_until__gt=now)
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    return max(1, int((until - now).total_seconds() + 0.999)) if until else 0


def _failure_count(scope: str, key: str, now: Any) -> bool:
    """Count one failure for (scope, key); True when it starts a lockout."""
    for _attempt in range(2):  # a concurrent first failure may create the row under us
        try:
            with transaction.atomic():
                row, _ = LoginThrottle.objects.select_for_update().get_or_create(
                    scope=scope, key=key, defaults={"window_started_at": now}
                )
                expired_lock = row.locked_until is not None and row.locked_until <= now
                if expired_lock or row.window_started_at + _window() <= now:
                    row.failures = 0
                    row.window_started_at = now
                    row.locked_until = None
                row.failures += 1
                starts_lock = row.failures >= _limit(scope) and row.locked_until is None
                if starts_lock:
                    row.locked_until = now + _window()
                row.save()
                return starts_lock
        except IntegrityError:
            continue
    return False


def login_failure_record(*, username: str, ip: str | None) -> bool:
    """Count a failed sign-in against the account name and the IP; True if either locks."""
    now = timezone.now()
    locked = False
    for scope, key in _keys(username=username, ip=ip):
        locked = _failure_count(scope, key, now) or locked
    return locked


def login_success_record(*, username: str) -> None:
    """A good sign-in clears the account's counter. The IP counter is left to expire, so one
    valid account cannot be used to reset guessing against others from the same address."""
    LoginThrottle.objects.filter(
        scope=LoginThrottle.Scope.ACCOUNT, key=_account_key(username)
    ).delete()


def login_throttles_prune() -> int:
    """Forget counters whose window and lock are over (random names would pile up)."""
    now = timezone.now()
    stale = LoginThrottle.objects.filter(window_started_at__lte=now - _window()).filter(
        Q(locked_until__isnull=True) | Q(locked_until__lte=now)
    )
    deleted, _ = stale.delete()
    return deleted


# --- sign-in ------------------------------------------------------------------


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


def _tenant_of(user: User | None) -> Any:
    return user.tenant if user is not None and user.tenant_id else None


def login_attempt(
    *, request: Any, username: str, password: str, ip: str | None
) -> LoginResult:
    """Check a username and password under the throttle.

    Steps: refuse at once while the account name or the IP is locked (the password is not
    even checked); authenticate; on failure count it (maybe starting a lockout) and audit;
    on success clear the account counter. The caller logs the user in (OK) or asks for the
    second factor (NEEDS_TOTP); ``login_completed`` writes the success audit row.
    """
    remaining = login_lock_remaining(username=username, ip=ip)
    if remaining:
        audit_record(
            action="login.failed",
            target=username,
            result=AuditEvent.Result.DENIED,
            detail={"reason": "locked", "retry_after": remaining},
            ip_address=ip,
        )
        return LoginResult(LoginOutcome.LOCKED, retry_after=remaining)

    user = authenticate(request, username=username, password=password)
    if user is None:
        audit_record(
            action="login.failed",
            target=username,
            result=AuditEvent.Result.FAILED,
            detail={"reason": "bad credentials"},
            ip_address=ip,
        )
        if login_failure_record(username=username, ip=ip):
            audit_record(
                action="login.lockout",
                target=username,
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
    login_success_record(username=username)
    return LoginResult(LoginOutcome.OK, user=user)


def login_completed(*, user: User, ip: str | None, second_factor: bool) -> None:
    """Audit a finished sign-in (called by the view after ``django.contrib.auth.login``)."""
    login_success_record(username=user.get_username())
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
    if totp_verify(user=user, code=code):
        return LoginResult(LoginOutcome.OK, user=user)
    audit_record(
        action="login.failed",
        target=username,
        tenant=_tenant_of(user),
        result=AuditEvent.Result.FAILED,
        detail={"reason": "bad second factor", "step": "totp"},
        ip_address=ip,
    )
    if login_failure_record(username=username, ip=ip):
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


# --- TOTP -----------------------------------------------------------------------


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


# --- invitations ------------------------------------------------------------------


class InvitationError(ValueError):
    """An invitation cannot be created or accepted (message is for the user)."""


def invitation_token_hash(raw_token: str) -> str:
    """What is stored (and what the browser session keeps) instead of the link token."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _may_manage_tenant_users(actor: Any, tenant: Any) -> bool:
    if has_role(actor, STAFF):
        return True
    return bool(
        has_role(actor, (Role.CLIENT,))
        and actor.is_tenant_admin
        and actor.tenant_id == tenant.pk
    )


def invitation_link(raw_token: str) -> str:
    base = settings.PORTAL_BASE_URL.rstrip("/")
    return base + reverse("accounts:invitation_open", kwargs={"token": raw_token})


def _send_invitation_mail(*, email: str, tenant_name: str, link: str, ttl_hours: int) -> None:
    send_mail(
        subject=f"You are invited to the backup portal of {tenant_name}",
        message=(
            f"Hello,\n\nyou have been invited to the backup portal for {tenant_name}.\n"
            f"Open this link to choose your user name and password (valid for {ttl_hours} "
            f"hours, usable once):\n\n{link}\n\n"
            "If you did not expect this e-mail, ignore it.\n"
        ),
        from_email=None,
        recipient_list=[email],
    )


def invitation_create(
    *,
    tenant: Any,
    email: str,
    actor: Any,
    is_tenant_admin: bool = False,
    ip: str | None = None,
) -> Invitation:
    """Invite ``email`` to ``tenant`` and mail the one-time link.

    Steps: check the actor may manage this tenant's users and the tenant is live; refuse an
    address that already has a user in the tenant; store the invitation with the token's
    hash only; audit; mail the link after commit (the token then lives only in the mail).
    """
    if not _may_manage_tenant_users(actor, tenant):
        raise PermissionDenied("you may not invite users to this tenant")
    if tenant.status in ("offboarding", "offboarded"):
        raise InvitationError("This tenant is being removed; no new users can join.")
    email = email.strip()
    if User.objects.filter(tenant=tenant, email__iexact=email).exists():
        raise InvitationError("A user with this e-mail address already belongs to this tenant.")
    raw_token = secrets.token_urlsafe(32)
    ttl_hours = settings.PORTAL_INVITE_TTL_HOURS
    link = invitation_link(raw_token)
    tenant_name = tenant.name
    created: list[Invitation] = []
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                tenant=tenant,
                email=email,
                token_hash=invitation_token_hash(raw_token),
                is_tenant_admin=is_tenant_admin,
                invited_by=actor,
                expires_at=timezone.now() + timedelta(hours=ttl_hours),
            )
            created.append(invitation)
            audit_record(
                action="invitation.sent",
                actor=actor,
                tenant=tenant,
                target=email,
                detail={"invitation_id": invitation.pk, "tenant_admin": is_tenant_admin},
                ip_address=ip,
            )
            transaction.on_commit(
                lambda: _send_invitation_mail(
                    email=email, tenant_name=tenant_name, link=link, ttl_hours=ttl_hours
                )
            )
    except (smtplib.SMTPException, OSError) as exc:
        # The mail runs after commit; an unsendable invitation is withdrawn, not left dangling.
        logger.warning("invitation mail to %s failed: %s", email, type(exc).__name__)
        if created:
            Invitation.objects.filter(pk=created[0].pk).update(revoked_at=timezone.now())
            audit_record(
                action="invitation.revoked", actor=actor, tenant=tenant, target=email,
                result=AuditEvent.Result.FAILED,
                detail={"invitation_id": created[0].pk, "reason": "mail not sent"}, ip_address=ip,
            )
        raise InvitationError("The invitation e-mail could not be sent. Try again later.") from exc
    return invitation


def invitation_accept(
    *, token_hash: str, username: str, password: str, ip: str | None
) -> User:
    """Turn a pending invitation into a client user, exactly once.

    Steps: lock the invitation row and re-check it is pending; validate the password;
    create the user; mark the invitation accepted; audit. A second acceptance (or a race
    with one) finds the row already accepted and fails.
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("tenant")
            .filter(token_hash=token_hash)
            .first()
        )
        if invitation is None or invitation.state != "pending":
            raise InvitationError("This invitation link is not valid any more. Ask for a new one.")
        if invitation.tenant.status in ("offboarding", "offboarded"):
            raise InvitationError("This tenant is being removed; no new users can join.")
        if User.objects.filter(username__iexact=username).exists():
            raise InvitationError("That user name is taken. Choose another.")
        candidate = User(username=username, email=invitation.email, role=Role.CLIENT)
        try:
            validate_password(password, user=candidate)
        except ValidationError as exc:
            raise InvitationError(" ".join(exc.messages)) from exc
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    username=username,
                    email=invitation.email,
                    password=password,
                    role=Role.CLIENT,
                    tenant=invitation.tenant,
                    is_tenant_admin=invitation.is_tenant_admin,
                )
        except IntegrityError as exc:  # the same name taken a moment ago
            raise InvitationError("That user name is taken. Choose another.") from exc
        claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now(), accepted_user=user
        )
        if claimed != 1:
            raise InvitationError("This invitation link is not valid any more.")
        audit_record(
            action="invitation.accepted",
            actor=user,
            tenant=invitation.tenant,
            target=invitation.email,
            detail={"invitation_id": invitation.pk, "username": username},
            ip_address=ip,
        )
    return user


def invitation_revoke(*, invitation: Invitation, actor: Any, ip: str | None = None) -> None:
    if not _may_manage_tenant_users(actor, invitation.tenant):
        raise PermissionDenied("you may not manage this tenant's invitations")
    with transaction.atomic():
        changed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        if changed:
            audit_record(
                action="invitation.revoked",
                actor=actor,
                tenant=invitation.tenant,
                target=invitation.email,
                detail={"invitation_id": invitation.pk},
                ip_address=ip,
            )


# --- removing users ---------------------------------------------------------------


def tenant_user_remove(*, user: User, actor: Any, ip: str | None = None) -> None:
    """Delete a client user of a tenant (staff, or the tenant's own client admin).

    Deleting (not deactivating) ends the user's sessions at once: the session's user id no
    longer resolves. The audit trail keeps the user name as text.
    """
    if user.role != Role.CLIENT or user.tenant_id is None:
        raise PermissionDenied("only client users are removed here")
    if not _may_manage_tenant_users(actor, user.tenant):
        raise PermissionDenied("you may not remove users of this tenant")
    if actor.pk == user.pk:
        raise InvitationError("You cannot remove yourself.")
    with transaction.atomic():
        tenant = user.tenant
        username = user.get_username()
        user_id = user.pk
        user.delete()
        audit_record(
            action="user.removed",
            actor=actor,
            tenant=tenant,
            target=username,
            detail={"user_id": user_id},
            ip_address=ip,
        )
