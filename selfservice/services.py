"""Writes for client self-service: restore tokens (create, shown once; revoke).

A restore token is ``<slug>@pbs!restore-<name>`` with ``DatastoreReader`` on the tenant's
namespace path (see the tenant PBS design in docs/tenants.md). Its effective rights are
checked on PBS with ``/access/permissions`` right after creation: it must be able to read
and list everything in the tenant's namespace (Datastore.Read + Datastore.Audit,
propagating), and nothing else: no Backup, Prune, Modify or any right outside the
namespace. A token that does not pass is deleted again and never shown.

The secret is returned to the caller exactly once and never stored: the view that
created it renders it in that same response.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from audit.models import AuditEvent
from audit.services import audit_record
from pbsclient.errors import AlreadyExists, NotFound, PbsError
from selfservice.selectors import restore_token_max_days
from tenants.models import AclGrant, Tenant, TenantToken
from tenants.naming import restore_name_problems, stored_names
from tenants.pbs import client_for_host
from tenants.restore import (
    RESTORE_ROLE,
    restore_privilege_problems,
    restore_token_effective_privileges,
)

logger = logging.getLogger(__name__)

# Tenants whose namespace is set up and readable (suspended tenants may still restore).
RESTORE_STATUSES = frozenset({Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED})


class RestoreTokenError(Exception):
    """A restore token could not be created or revoked; the message is for the client."""


@dataclass(frozen=True)
class CreatedRestoreToken:
    """The new token row and its secret; the only object that ever holds the secret."""

    token: TenantToken
    secret: str = field(repr=False)

    def __repr__(self) -> str:
        return f"CreatedRestoreToken(tokenid={self.token.tokenid!r}, secret='***')"


def _check_tenant(tenant: Tenant) -> None:
    if tenant.status not in RESTORE_STATUSES:
        raise RestoreTokenError("Restore tokens are available once your backup space is active.")
    if not (tenant.host_id and tenant.datastore_id and tenant.namespace and tenant.pbs_userid):
        raise RestoreTokenError("Your backup space is not set up yet.")


@sensitive_variables("created")
def restore_token_create(
    *, tenant: Tenant, name: str, days: int, actor: Any, ip: str | None = None
) -> CreatedRestoreToken:
    """Create a restore token on PBS, verify its effective rights, record it.

    Steps:
    1. Validate the name (PBS SAFE_ID, token id <= 64) and the lifetime (tenant and site
       maximum); refuse a name a live token already uses.
    2. PBS: create the token (with expiry), grant DatastoreReader on the namespace path.
    3. PBS: read the token's effective rights on the namespace path and on every path, and
       check them (restore_privilege_problems). On any problem delete the token again.
    4. Database, one transaction: the TenantToken row (with the checked rights, revealed
       now), the AclGrant row, audit rows "token.created" and "token.revealed". If this
       fails, the PBS token is deleted again.
    """
    _check_tenant(tenant)
    name = name.strip()
    problems = restore_name_problems(tenant.slug, name)
    if problems:
        raise RestoreTokenError(" ".join(problems))
    max_days = restore_token_max_days(tenant)
    if not 1 <= days <= max_days:
        raise RestoreTokenError(f"Choose a lifetime between 1 and {max_days} days.")

    names = stored_names(tenant)
    token_name = names.restore_token_name(name)
    userid = tenant.pbs_userid
    tokenid = f"{userid}!{token_name}"
    acl_path = tenant.acl_path
    if TenantToken.objects.filter(tenant=tenant, name=token_name, revoked_at__isnull=True).exists():
        raise RestoreTokenError("A token with this name exists. Revoke it first or pick another name.")

    expires_at = timezone.now() + timedelta(days=days)
    comment = f"pbs-portal restore token by {actor.get_username()}"[:128]
    problems: list[str] = []
    effective: dict[str, dict[str, bool]] = {}
    with client_for_host(tenant.host, purpose="automation") as client:
        try:
            created = client.token_create(
                userid, token_name, comment=comment, expire=int(expires_at.timestamp())
            )
        except AlreadyExists as exc:
            raise RestoreTokenError(
                "A token with this name still exists on the backup server. Pick another name."
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
                    "The new token's rights on the backup server were not as expected, so it "
                    "was deleted again. Your provider has been notified."
                )
            with transaction.atomic():
                now = timezone.now()
                token = TenantToken.objects.create(
                    tenant=tenant,
                    purpose=TenantToken.Purpose.RESTORE,
                    name=token_name,
                    tokenid=tokenid,
                    comment=comment,
                    expires_at=expires_at,
                    created_by=actor,
                    revealed_at=now,
                    revealed_by=actor,
                    effective_privileges=effective,
                    privileges_checked_at=now,
                )
                AclGrant.objects.get_or_create(
                    tenant=tenant, path=acl_path, auth_id=tokenid, role=RESTORE_ROLE,
                    defaults={"propagate": True},
                )
                detail = {"token_id": token.pk, "expires_at": expires_at.isoformat(), "days": days}
                audit_record(
                    action="token.created", actor=actor, tenant=tenant, target=tokenid,
                    detail=detail, ip_address=ip,
                )
                audit_record(
                    action="token.revealed", actor=actor, tenant=tenant, target=tokenid,
                    detail={"token_id": token.pk, "shown": "once, at creation"}, ip_address=ip,
                )
        except BaseException as exc:
            # Whatever went wrong after the token exists on PBS, it must not survive there.
            _delete_quietly(client, userid, token_name)
            if isinstance(exc, RestoreTokenError):
                audit_record(
                    action="token.rejected", actor=actor, tenant=tenant, target=tokenid,
                    result=AuditEvent.Result.FAILED,
                    detail={"problems": problems, "privileges": effective}, ip_address=ip,
                )
                logger.error("restore token %s had unexpected rights: %s", tokenid, problems)
                raise
            if isinstance(exc, IntegrityError):
                raise RestoreTokenError("A token with this name exists. Pick another name.") from exc
            if isinstance(exc, PbsError):
                raise RestoreTokenError(
                    "The backup server failed while setting up the token; it was removed "
                    "again. Please try again in a few minutes."
                ) from exc
            raise
    return CreatedRestoreToken(token=token, secret=created.value)


def _delete_quietly(client: Any, userid: str, token_name: str) -> None:
    try:
        with suppress(NotFound):
            client.token_delete(userid, token_name)
    except PbsError as exc:  # reported; staff see the drift on the tenant page
        logger.error(
            "could not delete token %s!%s after a failed create: %s",
            userid, token_name, type(exc).__name__,
        )


def restore_token_revoke(*, token: TenantToken, actor: Any, ip: str | None = None) -> bool:
    """Delete a restore token on PBS and mark the row revoked (kept for the record).

    Idempotent: a token already revoked, or already gone on PBS, is fine. Returns True if
    this call revoked it. PBS first: the row says revoked only once PBS refuses the token.
    """
    if token.purpose != TenantToken.Purpose.RESTORE:
        raise RestoreTokenError("Only restore tokens can be revoked here.")
    if token.revoked_at:
        return False
    tenant = token.tenant
    try:
        # NotFound: expired and cleaned up, or removed by staff: already harmless.
        with client_for_host(tenant.host, purpose="automation") as client, suppress(NotFound):
            client.token_delete(tenant.pbs_userid, token.name)
    except PbsError as exc:
        logger.warning("restore token revoke failed for %s: %s", token.pk, type(exc).__name__)
        raise RestoreTokenError(
            "The backup server cannot be reached right now; the token is still valid. "
            "Please try again in a few minutes."
        ) from exc
    with transaction.atomic():
        changed = TenantToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=actor, enabled=False, secret_enc=""
        )
        if not changed:
            return False
        AclGrant.objects.filter(tenant=tenant, auth_id=token.tokenid).delete()
        audit_record(
            action="token.revoked", actor=actor, tenant=tenant, target=token.tokenid,
            detail={"token_id": token.pk}, ip_address=ip,
        )
    token.refresh_from_db()
    return True
