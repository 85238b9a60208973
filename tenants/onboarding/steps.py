"""Onboarding and repair steps: check before create, one PBS object each."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection
from concurrent.futures import Future
from typing import Any

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
from tenants.pbsstate import LiveState, parent_of


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
    user = None if ctx.create_first else ctx.state.user(userid)
    if user is None:
        try:
            ctx.client.user_create(userid=userid, comment=ctx.names.user_comment, enable=True)
        except AlreadyExists:
            user = ctx.client.user_get(userid)  # made meanwhile (or the answer was lost)
        else:
            ctx.created.add("user")
            if not ctx.create_first:  # a batch snapshot that was read stays current
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


def _namespace_post(ctx: StepContext, ns: str) -> list[str]:
    """Create ``ns`` on PBS (no database work, so it may run ahead in another thread);
    returns the namespaces made, parents first."""
    parent = parent_of(ns)
    name = ns.rsplit("/", 1)[-1]
    made: list[str] = []
    try:
        ctx.client.namespace_create(ctx.store, name, parent=parent or None)
    except NotFound:
        # PBS: "cannot create new namespace, parent ... doesn't already exists". Another
        # worker may be making the parent right now, so: make sure it exists (creating a
        # namespace is idempotent), then try once more. A missing datastore fails again.
        if not parent:
            raise
        if ctx.create_first or not ctx.state.namespace_exists(ctx.store, parent):
            made += _namespace_post(ctx, parent)
        ctx.client.namespace_create(ctx.store, name, parent=parent or None)
    return [*made, ns]


def _create_namespace(ctx: StepContext, ns: str, made: list[str] | None = None) -> None:
    for item in _namespace_post(ctx, ns) if made is None else made:
        if not ctx.create_first:
            ctx.state.record_namespace(ctx.store, item)
        with transaction.atomic():
            ctx.audit("pbs.namespace.create", f"{ctx.store}:{item}")


def step_namespace(ctx: StepContext) -> str:
    """PBS creates a namespace idempotently (an existing one answers 200), so a first
    onboarding only creates; repair looks first, so a converged tenant costs no write."""
    ns = ctx.names.namespace
    ahead = ctx.ahead.pop("namespace", None)
    if ahead is not None:
        _create_namespace(ctx, ns, ahead.result())
        return "created"
    if not ctx.create_first and ctx.state.namespace_exists(ctx.store, ns):
        return "existed"
    _create_namespace(ctx, ns)
    return "created"


# The creates sent ahead wait for this step: it proves the PBS user is the portal's (a
# foreign user of that name stops the run before anything else is made).
AHEAD_AFTER = "user"


def start_ahead(ctx: StepContext, pending: Collection[str], submit: Callable[..., Future[Any]]) -> None:
    """On a first onboarding, once the user step is done, send the namespace and prune job
    creates at once, next to the ACL and token writes: they depend on nothing else. Their
    steps wait for the answers and record them in order (the threads do PBS calls only, no
    database work)."""
    if not ctx.create_first:
        return
    ctx.submit = submit
    if "namespace" in pending:
        ctx.ahead["namespace"] = submit(_namespace_post, ctx, ctx.names.namespace)
    if "prune_job" in pending:
        desired = desired_prune_job(ctx.tenant, ctx.names, ctx.store)
        ctx.ahead["prune_job"] = submit(ctx.client.prune_job_create, desired)


def _has_no_acl_entries(ctx: StepContext, auth_id: str) -> bool:
    """True when ``auth_id`` cannot have ACL entries yet, so granting needs no read: a token
    this execution created (PBS drops a token's entries when it deletes the token, and
    refuses entries for a token that does not exist). A user this execution created may
    still hold entries of an earlier user of that name (PBS keeps a deleted user's own
    entries): on a first onboarding its roles are granted unread too, and the verify step
    catches such leftovers and converges with a read."""
    if "!" in auth_id:
        return f"token:{auth_id.split('!', 1)[1]}" in ctx.created
    return ctx.create_first and "user" in ctx.created


def _grants_sent_at_once(ctx: StepContext, auth_id: str, path: str, roles: list[str]) -> dict[str, Future[None]]:
    """Several roles granted unread on a run alone (``ctx.submit``): one PUT each, all sent
    at once (PBS takes one role per PUT and applies them under its config lock)."""
    if ctx.submit is None or auth_id not in ctx.granted_unread or len(roles) < 2:
        return {}
    return {
        role: ctx.submit(ctx.client.acl_update, path=path, role=role, auth_id=auth_id, propagate=True) for role in roles
    }


def converge_acl(ctx: StepContext, auth_id: str, roles: set[str]) -> str:
    """Make ``auth_id``'s roles on the tenant path exactly ``roles``; returns the outcome."""
    path = ctx.path
    if _has_no_acl_entries(ctx, auth_id):
        present: dict[str, AclEntry] = {}
        ctx.granted_unread.add(auth_id)
    else:
        present = {entry.roleid: entry for entry in ctx.state.acl_entries(path) if entry.ugid == auth_id}
    added: list[str] = []
    removed: list[str] = []
    to_add = [role for role in sorted(roles) if not (role in present and present[role].propagate)]
    sent = _grants_sent_at_once(ctx, auth_id, path, to_add)
    failure: BaseException | None = None
    for role in to_add:
        try:
            if role in sent:
                sent[role].result()
            else:
                ctx.client.acl_update(path=path, role=role, auth_id=auth_id, propagate=True)
        except Exception as exc:  # the grants PBS made are recorded first
            failure = failure or exc
            continue
        if auth_id not in ctx.granted_unread:
            ctx.state.record_acl(AclEntry(path=path, ugid=auth_id, ugid_type="user", propagate=True, roleid=role), True)
        with transaction.atomic():
            if ctx.create_first and auth_id in ctx.granted_unread:
                # A tenant nothing was ever tried for has no grant rows yet.
                AclGrant.objects.create(tenant=ctx.tenant, path=path, auth_id=auth_id, role=role, propagate=True)
            else:
                AclGrant.objects.update_or_create(
                    tenant=ctx.tenant, path=path, auth_id=auth_id, role=role, defaults={"propagate": True}
                )
            ctx.audit("pbs.acl.grant", f"{path} {auth_id} {role}", {"propagate": True})
        added.append(role)
    if failure is not None:
        raise failure
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
    # A user this execution created has no tokens yet (PBS deletes them with the user).
    token = None if "user" in ctx.created else ctx.state.token(userid, name)
    if token is None:
        try:
            created = ctx.client.token_create(userid, name, comment=ctx.names.user_comment, enable=enable)
        except AlreadyExists:
            token = ctx.client.token_get(userid, name)  # made meanwhile: its secret is lost
        else:
            ctx.created.add(f"token:{name}")
            if "user" not in ctx.created:
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
        if tokenid != ctx.names.backup_tokenid and ("user" in ctx.created or ctx.state.token(userid, name) is None):
            ctx.notes.append(f"{tokenid} is missing on PBS (see drift)")
            continue
        outcomes.append(converge_acl(ctx, tokenid, desired_roles(ctx.tenant, tokenid, ctx.names)))
    for outcome in ("updated", "created"):
        if outcome in outcomes:
            return outcome
    return "existed"


def step_prune_job(ctx: StepContext) -> str:
    desired = desired_prune_job(ctx.tenant, ctx.names, ctx.store)
    ahead = ctx.ahead.pop("prune_job", None)
    job = None if ctx.create_first else ctx.state.prune_job(desired.id)
    if job is None:
        try:
            if ahead is not None:
                ahead.result()
            else:
                ctx.client.prune_job_create(desired)
        except AlreadyExists:
            job = ctx.client.prune_job_get(desired.id)
        else:
            if not ctx.create_first:
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


def _token_privileges_granted_unread(
    ctx: StepContext, user_perms: dict[str, dict[str, bool]]
) -> dict[str, dict[str, bool]]:
    """The backup token's effective privileges, proven without asking PBS about the token:
    this execution created the token and granted its roles unread, so its only ACL entries
    are the desired roles on the tenant path (propagating). PBS gives a token its own ACL
    AND its user's rights on each path (reference 4.4), so on every path the user's map
    lists, the token holds the user's privileges that its roles grant, inside the tenant
    path only; nowhere else."""
    granted = expected_backup_token_privileges(ctx.tenant)
    inside = ctx.path + "/"
    derived: dict[str, dict[str, bool]] = {}
    for path, privs in user_perms.items():
        if path == ctx.path or path.startswith(inside):
            mine = {priv: propagate for priv, propagate in privs.items() if priv in granted}
            if mine:
                derived[path] = mine
    return derived


def verify_access(ctx: StepContext) -> list[str]:
    """Read effective privileges of the user and the backup token, store them, and return
    what differs from the tenant design. One /access/permissions call when this execution
    created the token (its privileges follow from the user's), two otherwise."""
    userid, tokenid = ctx.names.userid, ctx.names.backup_tokenid
    user_perms = ctx.client.permissions_get(auth_id=userid)
    if tokenid in ctx.granted_unread:
        token_perms = _token_privileges_granted_unread(ctx, user_perms)
    else:
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
    if problems and ctx.granted_unread:
        # Roles were granted without reading the ACL first: an entry kept from an earlier
        # PBS user of this name may be in the way. Converge with a read, then prove again.
        ctx.notes.append("converged the ACL with a read after the first proof")
        ctx.create_first = False
        ctx.created.clear()
        ctx.granted_unread.clear()
        ctx.state = LiveState(ctx.client)
        step_user_acl(ctx)
        step_token_acl(ctx)
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
