"""Invitations of a tenant client users, and removing users."""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation, Role, User
from accounts.permissions import STAFF, has_role
from audit.models import AuditEvent
from audit.services import audit_record

logger = logging.getLogger(__name__)


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
