"""Restore tokens: one service for staff and clients.

A restore token is ``<user>!restore-<name>`` with ``DatastoreReader`` on the tenant's namespace
path (docs/tenants.md). Its effective rights are checked on PBS with ``/access/permissions``
right after creation (``tenants.restore``): it must read and list everything in the namespace
and nothing else; a token that does not pass is deleted again and never shown.

Staff and clients differ only in what happens to the secret: staff tokens keep it encrypted
for one later reveal (``token_reveal``); a client's is returned in the same response and never
stored. The audit trail names both the same way: ``token.created``, ``token.revealed``,
``token.rejected``, ``token.revoked``.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEvent
from audit.services import audit_record
from core.actors import actor_or_none
from core.crypto import encrypt_secret
from pbsclient.errors import AlreadyExists, NotFound, PbsError
from tenants.models import AclGrant, Tenant, TenantToken
from tenants.naming import restore_name_problems, stored_names
from tenants.pbs import client_for_host
from tenants.restore import RESTORE_ROLE, restore_privilege_problems, restore_token_effective_privileges

logger = logging.getLogger(__name__)

# Tenants whose namespace is set up and readable (suspended tenants may still restore).
RESTORE_STATUSES = frozenset({Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED})


class RestoreTokenError(ValidationError):
    """A restore token could not be created or revoked. The message is for the person who
    asked (staff or client); field errors (``name``, ``days``) come as a dict."""

    def __str__(self) -> str:
        return " ".join(self.messages)


@dataclass(frozen=True)
class CreatedRestoreToken:
    """The new token row and, for a client, its secret (the only object that ever holds it).
    For staff the secret is empty: it is kept encrypted on the row for one reveal."""

    token: TenantToken
    secret: str = field(repr=False, default="")

    def __repr__(self) -> str:
        return f"CreatedRestoreToken(tokenid={self.token.tokenid!r}, secret='***')"


def restore_token_max_days(tenant: Tenant) -> int:
    """The longest lifetime a token may have: the tenant's limit within the site's."""
    return max(1, min(tenant.max_restore_token_days, settings.PORTAL_MAX_RESTORE_TOKEN_DAYS))


def _validate(tenant: Tenant, name: str, days: int) -> str:
    """The token's PBS name, or RestoreTokenError naming what is wrong."""
    if tenant.status not in RESTORE_STATUSES:
        raise RestoreTokenError("Restore tokens are available once the backup space is active.")
    if not (tenant.host_id and tenant.datastore_id and tenant.namespace and tenant.pbs_userid):
        raise RestoreTokenError("The backup space is not set up yet.")
    errors: dict[str, list[str]] = {}
    problems = restore_name_problems(tenant.slug, name)
    if problems:
        errors["name"] = problems
    max_days = restore_token_max_days(tenant)
    if not 1 <= days <= max_days:
        errors["days"] = [f"Choose a lifetime between 1 and {max_days} days."]
    token_name = stored_names(tenant).restore_token_name(name)
    if TenantToken.objects.filter(tenant=tenant, name=token_name, revoked_at__isnull=True).exists():
        errors.setdefault("name", []).append("A token with this name exists. Revoke it first or pick another name.")
    if errors:
        raise RestoreTokenError(errors)
    return token_name


@sensitive_variables("created")
def restore_token_create(
    *,
    tenant: Tenant,
    name: str,
    actor: Any,
    days: int | None = None,
    keep_secret: bool = False,
    ip: str | None = None,
) -> CreatedRestoreToken:
    """Create a restore token on PBS, verify its effective rights, record it.

    Steps:
    1. Validate the tenant's state, the name (PBS SAFE_ID, token id <= 64) and the lifetime
       (default: the longest allowed); refuse a name a live token already uses.
    2. PBS: create the token (with expiry), grant DatastoreReader on the namespace path.
    3. PBS: read the token's effective rights and check them; on any problem delete it again
       and audit ``token.rejected``.
    4. One transaction: the TenantToken row (with the checked rights; the secret encrypted
       when ``keep_secret``, else marked revealed now), the AclGrant row, ``token.created``
       (and ``token.revealed`` when the secret goes back to the caller). If this fails, the
       PBS token is deleted again.
    """
    name = name.strip()
    days = restore_token_max_days(tenant) if days is None else days
    token_name = _validate(tenant, name, days)
    userid = tenant.pbs_userid
    tokenid = f"{userid}!{token_name}"
    acl_path = tenant.acl_path
    who = actor.get_username() if actor_or_none(actor) else "the portal"
    comment = f"pbs-portal restore token by {who}"[:128]
    expires_at = timezone.now() + timedelta(days=days)
    problems: list[str] = []
    effective: dict[str, dict[str, bool]] = {}
    with client_for_host(tenant.host, purpose="automation") as client:
        try:
            created = client.token_create(userid, token_name, comment=comment, expire=int(expires_at.timestamp()))
        except AlreadyExists as exc:
            raise RestoreTokenError(
                {"name": ["A token with this name still exists on the backup server. Pick another name."]}
            ) from exc
        except PbsError as exc:
            logger.warning("restore token create failed for tenant %s: %s", tenant.pk, type(exc).__name__)
            raise RestoreTokenError(
                "The backup server cannot be reached right now; no token was created. "
                "Please try again in a few minutes."
            ) from exc
        try:
            client.acl_update(path=acl_path, role=RESTORE_ROLE, auth_id=tokenid, propagate=True)
            effective = restore_token_effective_privileges(client, tokenid, acl_path)
            problems = restore_privilege_problems(effective, acl_path=acl_path)
            if problems:
                raise RestoreTokenError(
                    "The new token's rights on the backup server were not as expected, so it was "
                    "deleted again. The provider's staff see why in the audit trail."
                )
            token = _record(
                tenant=tenant, token_name=token_name, tokenid=tokenid, comment=comment, expires_at=expires_at,
                actor=actor, ip=ip, days=days, effective=effective,
                secret_enc=encrypt_secret(created.value) if keep_secret else "",
            )  # fmt: skip
        except BaseException as exc:
            # Whatever went wrong after the token exists on PBS, it must not survive there.
            _delete_quietly(client, userid, token_name)
            if isinstance(exc, RestoreTokenError):
                audit_record(
                    action="token.rejected", actor=actor, tenant=tenant, target=tokenid,
                    result=AuditEvent.Result.FAILED,
                    detail={"problems": problems, "privileges": effective}, ip_address=ip,
                )  # fmt: skip
                logger.error("restore token %s had unexpected rights: %s", tokenid, problems)
                raise
            if isinstance(exc, IntegrityError):
                raise RestoreTokenError({"name": ["A token with this name exists. Pick another name."]}) from exc
            if isinstance(exc, PbsError):
                raise RestoreTokenError(
                    "The backup server failed while setting up the token; it was removed again. "
                    "Please try again in a few minutes."
                ) from exc
            raise
    return CreatedRestoreToken(token=token, secret="" if keep_secret else created.value)


def _record(
    *, tenant: Tenant, token_name: str, tokenid: str, comment: str, expires_at: Any, actor: Any,
    ip: str | None, days: int, effective: dict[str, dict[str, bool]], secret_enc: str,
) -> TenantToken:  # fmt: skip
    with transaction.atomic():
        now = timezone.now()
        shown_now = not secret_enc
        token = TenantToken.objects.create(
            tenant=tenant, purpose=TenantToken.Purpose.RESTORE, name=token_name, tokenid=tokenid,
            comment=comment, expires_at=expires_at, created_by=actor_or_none(actor), secret_enc=secret_enc,
            secret_stored_at=now if secret_enc else None,
            revealed_at=now if shown_now else None, revealed_by=actor_or_none(actor) if shown_now else None,
            effective_privileges=effective, privileges_checked_at=now,
        )  # fmt: skip
        AclGrant.objects.get_or_create(
            tenant=tenant, path=tenant.acl_path, auth_id=tokenid, role=RESTORE_ROLE, defaults={"propagate": True}
        )
        detail = {"token_id": token.pk, "purpose": "restore", "expires_at": expires_at.isoformat(), "days": days}
        audit_record(action="token.created", actor=actor, tenant=tenant, target=tokenid, detail=detail, ip_address=ip)
        if shown_now:
            audit_record(
                action="token.revealed", actor=actor, tenant=tenant, target=tokenid,
                detail={"token_id": token.pk, "shown": "once, at creation"}, ip_address=ip,
            )  # fmt: skip
    return token


def _delete_quietly(client: Any, userid: str, token_name: str) -> None:
    try:
        with suppress(NotFound):
            client.token_delete(userid, token_name)
    except PbsError as exc:  # reported; staff see the drift on the tenant page
        logger.error("could not delete token %s!%s after a failed create: %s", userid, token_name, type(exc).__name__)


def restore_token_revoke(*, token: TenantToken, actor: Any, ip: str | None = None) -> bool:
    """Delete a restore token on PBS and mark the row revoked (kept for the record).

    Idempotent: a token already revoked, or already gone on PBS, is fine. Returns True if this
    call revoked it. PBS first: the row says revoked only once PBS refuses the token.
    """
    if token.purpose != TenantToken.Purpose.RESTORE:
        raise RestoreTokenError("Only restore tokens can be revoked here.")
    if token.revoked_at:
        return False
    tenant = token.tenant
    if tenant.host is not None and tenant.status != Tenant.Status.OFFBOARDED:
        try:
            # NotFound: expired and cleaned up, or removed by staff: already harmless.
            with client_for_host(tenant.host, purpose="automation") as client, suppress(NotFound):
                client.token_delete(token.tokenid.split("!", 1)[0], token.name)
        except PbsError as exc:
            logger.warning("restore token revoke failed for %s: %s", token.pk, type(exc).__name__)
            raise RestoreTokenError(
                "The backup server cannot be reached right now; the token is still valid. "
                "Please try again in a few minutes."
            ) from exc
    with transaction.atomic():
        changed = TenantToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor_or_none(actor), enabled=False, secret_enc=""
        )
        if not changed:
            return False
        AclGrant.objects.filter(tenant=tenant, auth_id=token.tokenid).delete()
        audit_record(
            action="token.revoked", actor=actor, tenant=tenant, target=token.tokenid,
            detail={"token_id": token.pk}, ip_address=ip,
        )  # fmt: skip
    token.refresh_from_db()
    return True
