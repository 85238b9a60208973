"""Reads for accounts: a tenant's users and invitations, pending invitation lookup."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Invitation, Role, User


def invitation_find_pending(*, token_hash: str) -> Invitation | None:
    """The usable invitation for a token hash, or None (unknown, used, revoked, expired)."""
    if not token_hash:
        return None
    return (
        Invitation.objects.select_related("tenant")
        .filter(
            token_hash=token_hash,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )


def tenant_users(*, tenant_id: int) -> QuerySet[User]:
    """The client users of one tenant, for the team pages."""
    return User.objects.filter(tenant_id=tenant_id, role=Role.CLIENT).order_by("username")


def tenant_invitations_open(*, tenant_id: int) -> QuerySet[Invitation]:
    """Invitations of one tenant that are neither accepted nor revoked (expired ones too,
    so staff see that a link ran out)."""
    return (
        Invitation.objects.filter(
            tenant_id=tenant_id, accepted_at__isnull=True, revoked_at__isnull=True
        )
        .select_related("invited_by")
        .order_by("-created_at")
    )


def user_by_id(user_id: int | None) -> User | None:
    """The user a task acts for (its id travels in the task's arguments); None if gone."""
    return User.objects.filter(pk=user_id).first() if user_id else None
