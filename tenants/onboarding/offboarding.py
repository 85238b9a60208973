"""Offboarding steps: tokens, ACLs, user, prune job, namespace (kept or deleted)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from core.actors import actor_or_none
from pbsclient.errors import NotFound
from tenants.models import AclGrant, TenantToken
from tenants.naming import PORTAL_COMMENT_PREFIX
from tenants.onboarding.context import StepContext
from tenants.onboarding.steps import (
    _tenant_is_known_to_portal,
    step_backup_token,
    step_namespace,
    step_prune_job,
    step_token_acl,
    step_user,
    step_user_acl,
    step_verify,
)


def _foreign_user(ctx: StepContext) -> bool:
    """True if ``<slug>@pbs`` exists on PBS but is not the portal's (no portal comment, and
    the portal never made anything for this tenant): offboarding must leave it alone."""
    user = ctx.state.user(ctx.names.userid)
    if user is None or (user.comment or "").startswith(PORTAL_COMMENT_PREFIX):
        return False
    return not _tenant_is_known_to_portal(ctx.tenant)


FOREIGN_NOTE = "the PBS user was not made by the portal: left alone"


def step_revoke_tokens(ctx: StepContext) -> str:
    userid = ctx.names.userid
    deleted = 0
    foreign = _foreign_user(ctx)
    if foreign:
        ctx.notes.append(FOREIGN_NOTE)
    for token in [] if foreign else ctx.state.tokens(userid):
        with contextlib.suppress(NotFound):
            ctx.client.token_delete(userid, token.token_name)
        ctx.state.record_token(userid, token.token_name, None)
        deleted += 1
        with transaction.atomic():
            ctx.audit("pbs.token.delete", token.tokenid, {"reason": "offboard"})
    now = timezone.now()
    actor = actor_or_none(ctx.actor)
    with transaction.atomic():
        revoked = TenantToken.objects.filter(tenant=ctx.tenant, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=actor, secret_enc="", enabled=False
        )
        AclGrant.objects.filter(tenant=ctx.tenant, auth_id__contains="!").delete()
    ctx.notes.append(f"{deleted} deleted on PBS, {revoked} revoked in the portal")
    return "deleted" if deleted else "absent"


def step_remove_acls(ctx: StepContext) -> str:
    """PBS keeps ACL entries granted to a user after the user is deleted (a re-created user
    would inherit them), so they go explicitly, wherever they are."""
    userid = ctx.names.userid
    prefix = userid + "!"
    removed = 0
    if _foreign_user(ctx):
        AclGrant.objects.filter(tenant=ctx.tenant).delete()
        ctx.notes.append(FOREIGN_NOTE)
        return "skipped"
    for entry in ctx.state.all_acl_entries():
        if entry.ugid != userid and not entry.ugid.startswith(prefix):
            continue
        ctx.client.acl_update(path=entry.path, role=entry.roleid, auth_id=entry.ugid, delete=True)
        ctx.state.record_acl(entry, False)
        removed += 1
        with transaction.atomic():
            ctx.audit("pbs.acl.revoke", f"{entry.path} {entry.ugid} {entry.roleid}")
    AclGrant.objects.filter(tenant=ctx.tenant).delete()
    ctx.notes.append(f"{removed} removed")
    return "deleted" if removed else "absent"


def step_delete_user(ctx: StepContext) -> str:
    userid = ctx.names.userid
    if ctx.state.user(userid) is None:
        return "absent"
    if _foreign_user(ctx):
        ctx.notes.append(FOREIGN_NOTE)
        return "skipped"
    try:
        ctx.client.user_delete(userid)
    except NotFound:
        return "absent"
    ctx.state.record_user(userid, None)
    with transaction.atomic():
        ctx.audit("pbs.user.delete", userid)
    return "deleted"


def step_delete_prune_job(ctx: StepContext) -> str:
    job_id = ctx.names.prune_job_id
    job = ctx.state.prune_job(job_id)
    if job is None:
        return "absent"
    if not (job.comment or "").startswith(PORTAL_COMMENT_PREFIX) and not _tenant_is_known_to_portal(ctx.tenant):
        ctx.notes.append("the prune job was not made by the portal: left alone")
        return "skipped"
    try:
        ctx.client.prune_job_delete(job_id)
    except NotFound:
        return "absent"
    ctx.state.record_prune_job(job_id, None)
    with transaction.atomic():
        ctx.audit("pbs.prune_job.delete", job_id)
    return "deleted"


def step_offboard_namespace(ctx: StepContext) -> str:
    ns = ctx.names.namespace
    if not ctx.options.get("delete_data"):
        ctx.notes.append(f"{ctx.store}:{ns} kept with its backups (no one has access to it)")
        return "kept"
    if not ctx.state.namespace_exists(ctx.store, ns):
        return "absent"
    try:
        removed = ctx.client.namespace_delete(ctx.store, ns, delete_groups=True)
    except NotFound:
        return "absent"
    ctx.state.record_namespace(ctx.store, ns, exists=False)
    counts = {k.replace("-", "_"): v for k, v in (removed or {}).items() if isinstance(v, int)}
    with transaction.atomic():
        ctx.audit("pbs.namespace.delete", f"{ctx.store}:{ns}", {"delete_groups": True, **counts})
    if counts.get("protected_snapshots"):
        ctx.notes.append(f"{counts['protected_snapshots']} protected snapshots were kept by PBS")
    return "deleted"


STEP_FUNCTIONS: dict[str, Callable[[StepContext], str]] = {
    "user": step_user,
    "namespace": step_namespace,
    "user_acl": step_user_acl,
    "backup_token": step_backup_token,
    "token_acl": step_token_acl,
    "prune_job": step_prune_job,
    "verify": step_verify,
    "revoke_tokens": step_revoke_tokens,
    "remove_acls": step_remove_acls,
    "delete_user": step_delete_user,
    "delete_prune_job": step_delete_prune_job,
}


OFFBOARD_STEP_FUNCTIONS = {**STEP_FUNCTIONS, "namespace": step_offboard_namespace}
