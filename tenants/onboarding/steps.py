"""Onboarding and repair steps: check before create, one PBS object each."""

from __future__ import annotations

import contextlib

from django.db import transaction
from django.utils import timezone

from core.actors import actor_or_none
from core.crypto import encrypt_secret
from pbsclient.errors import AlreadyExists, InvalidParameter, NotFound
from pbsclient.models import AclEntry, Token, User
from tenants.hints import OwnershipConflict, VerificationFailed
from tenants.models import AclGrant, Tenant, TenantToken
from tenants.naming import PORTAL_COMMENT_PREFIX
from tenants.onboarding.context import StepContext
from tenants.onboarding.design import (
    desired_prune_job,
    desired_roles,
    expected_backup_token_privileges,
    expected_user_privileges,
    privilege_problems,
    prune_job_diff,
)
from tenants.pbsstate import parent_of


def _tenant_is_known_to_portal(tenant: Tenant) -> bool:
    """True if the portal made PBS objects for this tenant before (so a PBS user without
    the portal's comment is still ours, e.g. after someone edited the comment)."""
    return (
        tenant.activated_at is not None
        or AclGrant.objects.filter(tenant=tenant).exists()
        or TenantToken.objects.filter(tenant=tenant).exists()
    )


def step_user(ctx: StepContext) -> str:
    userid = ctx.names.userid
    user = ctx.state.user(userid)
    if user is None:
        try:
            ctx.client.user_create(userid=userid, comment=ctx.names.user_comment, enable=True)
        except AlreadyExists:
            user = ctx.client.user_get(userid)  # made meanwhile (or the answer was lost)
        else:
            ctx.state.record_user(userid, User(userid=userid, comment=ctx.names.user_comment), created=True)
            with transaction.atomic():
                ctx.audit("pbs.user.create", userid)
            return "created"
    if not (user.comment or "").startswith(PORTAL_COMMENT_PREFIX) and not _tenant_is_known_to_portal(ctx.tenant):
        raise OwnershipConflict(
            f"PBS user {userid} already exists on {ctx.host.name} and was not made by the portal.",
            "Someone else uses this name on PBS. Pick another slug for the tenant, or, if this "
            f"user really belongs to the tenant, set its comment to '{ctx.names.user_comment}' "
            "on PBS and retry (the portal then adopts it).",
        )
    expired = user.expire is not None and user.expire <= int(timezone.now().timestamp())
    if not user.enable or expired:
        ctx.client.user_update(userid, enable=True, expire=0)
        ctx.state.record_user(userid, User(userid=userid, comment=user.comment))
        with transaction.atomic():
            ctx.audit("pbs.user.update", userid, {"enable": True, "was_expired": expired})
        ctx.notes.append("re-enabled")
        return "updated"
    return "existed"


def _create_namespace(ctx: StepContext, ns: str) -> None:
    parent = parent_of(ns)
    name = ns.rsplit("/", 1)[-1]
    try:
        ctx.client.namespace_create(ctx.store, name, parent=parent or None)
    except NotFound:
        # PBS: "cannot create new namespace, parent ... doesn't already exists". Another
        # worker may be making the parent right now, so: make sure it exists (creating a
        # namespace is idempotent), then try once more. A missing datastore fails again.
        if not parent:
            raise
        if not ctx.state.namespace_exists(ctx.store, parent):
            _create_namespace(ctx, parent)
        ctx.client.namespace_create(ctx.store, name, parent=parent or None)
    ctx.state.record_namespace(ctx.store, ns)
    with transaction.atomic():
        ctx.audit("pbs.namespace.create", f"{ctx.store}:{ns}")


def step_namespace(ctx: StepContext) -> str:
    ns = ctx.names.namespace
    if ctx.state.namespace_exists(ctx.store, ns):
        return "existed"
    _create_namespace(ctx, ns)
    return "created"


def converge_acl(ctx: StepContext, auth_id: str, roles: set[str]) -> str:
    """Make ``auth_id``'s roles on the tenant path exactly ``roles``; returns the outcome."""
    path = ctx.path
    present = {entry.roleid: entry for entry in ctx.state.acl_entries(path) if entry.ugid == auth_id}
    added: list[str] = []
    removed: list[str] = []
    for role in sorted(roles):
        entry = present.get(role)
        if entry is not None and entry.propagate:
            continue
        ctx.client.acl_update(path=path, role=role, auth_id=auth_id, propagate=True)
        ctx.state.record_acl(AclEntry(path=path, ugid=auth_id, ugid_type="user", propagate=True, roleid=role), True)
        with transaction.atomic():
            AclGrant.objects.update_or_create(
                tenant=ctx.tenant, path=path, auth_id=auth_id, role=role, defaults={"propagate": True}
            )
            ctx.audit("pbs.acl.grant", f"{path} {auth_id} {role}", {"propagate": True})
        added.append(role)
    for role in sorted(set(present) - roles):
        ctx.client.acl_update(path=path, role=role, auth_id=auth_id, delete=True)
        ctx.state.record_acl(present[role], False)
        with transaction.atomic():
            AclGrant.objects.filter(tenant=ctx.tenant, path=path, auth_id=auth_id, role=role).delete()
            ctx.audit("pbs.acl.revoke", f"{path} {auth_id} {role}")
        removed.append(role)
    # Entries that were already right still get a portal record (after a lost answer).
    for role in sorted(roles - set(added)):
        AclGrant.objects.get_or_create(
            tenant=ctx.tenant, path=path, auth_id=auth_id, role=role, defaults={"propagate": True}
        )
    if added:
        ctx.notes.append(f"{auth_id}: +{', +'.join(added)}")
    if removed:
        ctx.notes.append(f"{auth_id}: -{', -'.join(removed)}")
    if removed or (added and present):
        return "updated"
    return "created" if added else "existed"


def step_user_acl(ctx: StepContext) -> str:
    userid = ctx.names.userid
    return converge_acl(ctx, userid, desired_roles(ctx.tenant, userid, ctx.names))


def _store_new_secret(
    ctx: StepContext, row: TenantToken | None, name: str, secret: str, action: str, purpose: str
) -> TenantToken:
    """Persist a fresh token secret (encrypted) right after PBS issued it, with its audit row."""
    tokenid = ctx.names.tokenid(name)
    with transaction.atomic():
        if row is None:
            row = TenantToken.objects.create(
                tenant=ctx.tenant,
                purpose=purpose,
                name=name,
                tokenid=tokenid,
                comment=ctx.names.user_comment,
                enabled=ctx.tenant.writes_allowed if purpose == TenantToken.Purpose.BACKUP else True,
                created_by=actor_or_none(ctx.actor),
                secret_enc=encrypt_secret(secret),
                secret_stored_at=timezone.now(),
            )
        else:
            row.secret_enc = encrypt_secret(secret)
            row.secret_stored_at = timezone.now()
            row.revealed_at = None
            row.revealed_by = None
            row.save(update_fields=["secret_enc", "secret_stored_at", "revealed_at", "revealed_by"])
        ctx.audit(action, tokenid)
    return row


def token_renew_secret(ctx: StepContext, name: str, *, enable: bool) -> tuple[str, str]:
    """A new secret for an existing token: ``regenerate`` where PBS supports it (keeps the
    ACLs), else delete + create (the caller re-adds the token's ACLs).
    Returns (secret, "regenerated" | "recreated")."""
    userid = ctx.names.userid
    if ctx.host.supports_regenerate:
        try:
            secret = ctx.client.token_update(userid, name, regenerate=True)
        except InvalidParameter:
            secret = None  # an older PBS after all: fall through to delete + create
        if secret:
            return secret, "regenerated"
    with contextlib.suppress(NotFound):
        ctx.client.token_delete(userid, name)
    ctx.state.record_token(userid, name, None)
    with transaction.atomic():
        AclGrant.objects.filter(tenant=ctx.tenant, auth_id=ctx.names.tokenid(name)).delete()
        ctx.audit("pbs.token.delete", ctx.names.tokenid(name), {"reason": "renew secret"})
    created = ctx.client.token_create(userid, name, comment=ctx.names.user_comment, enable=enable)
    ctx.state.record_token(userid, name, Token(tokenid=created.tokenid, token_name=name, enable=enable))
    return created.value, "recreated"


def step_backup_token(ctx: StepContext) -> str:
    userid = ctx.names.userid
    name = ctx.names.backup_token_name
    enable = ctx.tenant.writes_allowed
    row = TenantToken.objects.filter(tenant=ctx.tenant, name=name, revoked_at__isnull=True).first()
    token = ctx.state.token(userid, name)
    if token is None:
        try:
            created = ctx.client.token_create(userid, name, comment=ctx.names.user_comment, enable=enable)
        except AlreadyExists:
            token = ctx.client.token_get(userid, name)  # made meanwhile: its secret is lost
        else:
            ctx.state.record_token(userid, name, Token(tokenid=created.tokenid, token_name=name, enable=enable))
            _store_new_secret(ctx, row, name, created.value, "pbs.token.create", TenantToken.Purpose.BACKUP)
            return "created"
    if row is not None and (row.secret_enc or row.revealed_at):
        if token.enable != enable:
            ctx.client.token_update(userid, name, enable=enable)
            ctx.state.record_token(userid, name, Token(tokenid=token.tokenid, token_name=name, enable=enable))
            with transaction.atomic():
                TenantToken.objects.filter(pk=row.pk).update(enabled=enable)
                ctx.audit("pbs.token.update", token.tokenid, {"enable": enable})
            return "updated"
        return "existed"
    # The token is on PBS but the portal never stored its secret (lost answer, crash).
    secret, how = token_renew_secret(ctx, name, enable=enable)
    _store_new_secret(ctx, row, name, secret, f"pbs.token.{how[:-1]}", TenantToken.Purpose.BACKUP)
    ctx.notes.append("secret was lost; " + how)
    return how


def step_token_acl(ctx: StepContext) -> str:
    """ACLs for the backup token and every live restore token that exists on PBS."""
    userid = ctx.names.userid
    outcomes: list[str] = []
    tokenids = [ctx.names.backup_tokenid]
    tokenids += list(
        TenantToken.objects.filter(
            tenant=ctx.tenant, purpose=TenantToken.Purpose.RESTORE, revoked_at__isnull=True
        ).values_list("tokenid", flat=True)
    )
    for tokenid in tokenids:
        name = tokenid.split("!", 1)[1]
        if tokenid != ctx.names.backup_tokenid and ctx.state.token(userid, name) is None:
            ctx.notes.append(f"{tokenid} is missing on PBS (see drift)")
            continue
        outcomes.append(converge_acl(ctx, tokenid, desired_roles(ctx.tenant, tokenid, ctx.names)))
    for outcome in ("updated", "created"):
        if outcome in outcomes:
            return outcome
    return "existed"


def step_prune_job(ctx: StepContext) -> str:
    desired = desired_prune_job(ctx.tenant, ctx.names, ctx.store)
    job = ctx.state.prune_job(desired.id)
    if job is None:
        try:
            ctx.client.prune_job_create(desired)
        except AlreadyExists:
            job = ctx.client.prune_job_get(desired.id)
        else:
            ctx.state.record_prune_job(desired.id, desired)
            with transaction.atomic():
                ctx.audit("pbs.prune_job.create", desired.id, {"store": ctx.store, **desired.keep})
            return "created"
    changes, deletes = prune_job_diff(job, desired)
    if not changes and not deletes:
        return "existed"
    ctx.client.prune_job_update(desired.id, delete=deletes, **changes)
    ctx.state.record_prune_job(desired.id, desired)
    with transaction.atomic():
        ctx.audit(
            "pbs.prune_job.update",
            desired.id,
            {"changed": sorted(changes), "cleared": sorted(deletes)},
        )
    return "updated"


def verify_access(ctx: StepContext) -> list[str]:
    """Read effective privileges of the user and the backup token, store them, and return
    what differs from the tenant design."""
    userid, tokenid = ctx.names.userid, ctx.names.backup_tokenid
    user_perms = ctx.client.permissions_get(auth_id=userid)
    token_perms = ctx.client.permissions_get(auth_id=tokenid)
    now = timezone.now()
    Tenant.objects.filter(pk=ctx.tenant.pk).update(user_privileges=user_perms, privileges_checked_at=now)
    ctx.tenant.user_privileges = user_perms
    TenantToken.objects.filter(tenant=ctx.tenant, tokenid=tokenid, revoked_at__isnull=True).update(
        effective_privileges=token_perms, privileges_checked_at=now
    )
    problems = privilege_problems(user_perms, path=ctx.path, expected=expected_user_privileges(ctx.tenant), who=userid)
    problems += privilege_problems(
        token_perms,
        path=ctx.path,
        expected=expected_backup_token_privileges(ctx.tenant),
        who=tokenid,
    )
    return problems


def step_verify(ctx: StepContext) -> str:
    problems = verify_access(ctx)
    if problems:
        raise VerificationFailed(
            "Effective privileges differ from the tenant design: " + "; ".join(problems) + ".",
            "An ACL outside the portal changes what this tenant can do (PBS: deeper paths replace "
            "roles from above, tokens get their ACL AND their user's). Remove the extra ACL "
            "entries for the tenant's user and tokens on PBS (Configuration > Access Control > "
            "Permissions), then retry; the portal re-adds what it needs.",
        )
    return "verified"
