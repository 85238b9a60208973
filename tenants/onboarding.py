"""The onboarding engine: runs of check-before-create steps that converge PBS to the tenant.

One engine drives three kinds of run (OnboardingRun.kind):

- ``onboard``: user, namespace, user ACL, backup token, token ACL, prune job, verify.
- ``repair``: the same steps on an existing tenant (drift repair); the tenant keeps its
  status, so a suspended tenant is converged to "suspended".
- ``offboard``: revoke tokens, remove the user's own ACLs, delete the user, delete the
  prune job, delete or keep the namespace.

Every step first looks at PBS (through a PbsState: live GETs, or a per-batch snapshot),
then writes only what is missing, and records each PBS mutation in the portal (rows and an
audit event) in one transaction. Re-running a run, or a new run after a failure, finishes
the job without duplicates. A run is claimed with a lease (conditional update), so a
redelivered task never runs it twice at the same time.

Errors: transient ones (connection trouble, 5xx) leave the step pending and ask the caller
(the Celery task) to retry later; permanent ones (403, invalid parameter, authentication,
TLS pin) stop the run with the cause and a hint for staff.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.services import audit_record
from core.crypto import encrypt_secret
from core.signals import send_logged
from core.transient import is_transient
from pbsclient import PbsClient
from pbsclient.errors import AlreadyExists, InvalidParameter, NotFound, PbsError
from pbsclient.models import AclEntry, PruneJob, Token, User
from tenants.hints import OwnershipConflict, VerificationFailed, hint_for
from tenants.models import AclGrant, OnboardingRun, OnboardingStep, PbsHost, Tenant, TenantToken
from tenants.naming import PORTAL_COMMENT_PREFIX, TenantNames, stored_names
from tenants.pbs import client_for_host
from tenants.pbsstate import LiveState, PbsState, SnapshotState, parent_of
from tenants.signals import tenant_run_finished

log = logging.getLogger(__name__)

ONBOARD_STEPS = ("user", "namespace", "user_acl", "backup_token", "token_acl", "prune_job", "verify")
OFFBOARD_STEPS = ("revoke_tokens", "remove_acls", "delete_user", "delete_prune_job", "namespace")
STEP_LABELS = {
    "user": "PBS user",
    "namespace": "Namespace",
    "user_acl": "User permissions",
    "backup_token": "Backup token",
    "token_acl": "Token permissions",
    "prune_job": "Retention (prune job)",
    "verify": "Verify effective privileges",
    "revoke_tokens": "Revoke tokens",
    "remove_acls": "Remove the user's ACLs",
    "delete_user": "Delete PBS user",
    "delete_prune_job": "Delete prune job",
}
LIVE_STATUSES = (OnboardingRun.Status.QUEUED, OnboardingRun.Status.RUNNING)


def lease() -> timedelta:
    """How long a worker holds a run it executes (PORTAL_ONBOARDING_LEASE_SECONDS): longer
    than any single step can take, short enough that a crashed worker's run is picked up
    again soon (by the stale-run recovery on beat)."""
    return timedelta(seconds=settings.PORTAL_ONBOARDING_LEASE_SECONDS)

# Roles of the tenant design (docs/tenants.md).
ROLE_USER_READ = "DatastoreReader"
ROLE_USER_WRITE = "DatastorePowerUser"
ROLE_BACKUP_TOKEN = "DatastoreBackup"  # noqa: S105 (a role name)
ROLE_RESTORE_TOKEN = "DatastoreReader"  # noqa: S105 (a role name)
PRIVS_READ = frozenset({"Datastore.Audit", "Datastore.Verify", "Datastore.Read"})
PRIVS_WRITE = frozenset({"Datastore.Backup", "Datastore.Prune"})
PRIVS_BACKUP_TOKEN = frozenset({"Datastore.Backup"})


def steps_for(kind: str) -> tuple[str, ...]:
    return OFFBOARD_STEPS if kind == OnboardingRun.Kind.OFFBOARD else ONBOARD_STEPS


class RunResult(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"  # a transient error: run again later
    BUSY = "busy"  # another worker holds the lease
    GONE = "gone"  # no such run, or it is finished already


# --- what the tenant should look like on PBS ---------------------------------------------


def desired_roles(tenant: Tenant, auth_id: str, names: TenantNames) -> set[str]:
    """Roles ``auth_id`` should hold on the tenant's namespace path, given its status."""
    writes = tenant.writes_allowed
    if auth_id == names.userid:
        return {ROLE_USER_READ, ROLE_USER_WRITE} if writes else {ROLE_USER_READ}
    if auth_id == names.backup_tokenid:
        return {ROLE_BACKUP_TOKEN} if writes else set()
    return {ROLE_RESTORE_TOKEN}


def expected_user_privileges(tenant: Tenant) -> frozenset[str]:
    return PRIVS_READ | PRIVS_WRITE if tenant.writes_allowed else PRIVS_READ


def expected_backup_token_privileges(tenant: Tenant) -> frozenset[str]:
    return PRIVS_BACKUP_TOKEN if tenant.writes_allowed else frozenset()


def desired_prune_job(tenant: Tenant, names: TenantNames, store: str) -> PruneJob:
    return PruneJob(
        id=names.prune_job_id,
        store=store,
        schedule=tenant.schedule,
        ns=names.namespace,
        max_depth=None,  # the tenant's whole subtree
        keep_last=tenant.keep_last,
        keep_hourly=tenant.keep_hourly,
        keep_daily=tenant.keep_daily,
        keep_weekly=tenant.keep_weekly,
        keep_monthly=tenant.keep_monthly,
        keep_yearly=tenant.keep_yearly,
        comment=names.user_comment,
        disable=False,
    )


PRUNE_COMPARED = (
    "store", "schedule", "ns", "max_depth", "keep_last", "keep_hourly", "keep_daily",
    "keep_weekly", "keep_monthly", "keep_yearly", "disable",
)  # fmt: skip
PRUNE_DELETABLE = {
    "max_depth", "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
    "keep_yearly",
}  # fmt: skip


def prune_job_diff(current: PruneJob, desired: PruneJob) -> tuple[dict[str, Any], list[str]]:
    """(fields to set, fields to delete) that turn ``current`` into ``desired``."""
    changes: dict[str, Any] = {}
    deletes: list[str] = []
    for name in PRUNE_COMPARED:
        have, want = getattr(current, name), getattr(desired, name)
        if name == "ns":
            have, want = have or "", want or ""
        if have == want:
            continue
        if want is None and name in PRUNE_DELETABLE:
            deletes.append(name)
        else:
            changes[name] = want
    return changes, deletes


def privilege_problems(
    perms: dict[str, dict[str, bool]], *, path: str, expected: frozenset[str], who: str
) -> list[str]:
    """Compare /access/permissions output with what ``who`` should have: exactly
    ``expected`` on ``path`` (propagating), and nothing on any path outside it."""
    problems: list[str] = []
    here = perms.get(path, {})
    have = set(here)
    missing = expected - have
    extra = have - expected
    if missing:
        problems.append(f"{who} lacks {', '.join(sorted(missing))} on {path}")
    if extra:
        problems.append(f"{who} has more than intended on {path}: {', '.join(sorted(extra))}")
    not_propagating = sorted(priv for priv in expected & have if not here.get(priv))
    if not_propagating:
        problems.append(f"{who} has {', '.join(not_propagating)} on {path} without propagation")
    for other, privs in sorted(perms.items()):
        inside = other == path or other.startswith(path + "/")
        if privs and not inside:
            problems.append(f"{who} has {', '.join(sorted(privs))} outside its namespace, on {other}")
    return problems


# --- step context ------------------------------------------------------------------------


@dataclass
class StepContext:
    """What a step needs: the client, the PBS state, the tenant and who acts."""

    client: PbsClient
    state: PbsState
    tenant: Tenant
    host: PbsHost
    store: str
    names: TenantNames
    actor: Any = None
    run: OnboardingRun | None = None
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.names.acl_path(self.store)

    def audit(self, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
        """Record one PBS mutation. Call inside the transaction that records its effect."""
        facts = {"host": self.host.name}
        if self.run is not None:
            facts["run"] = self.run.pk
        facts.update(detail or {})
        audit_record(action=action, actor=self.actor, tenant=self.tenant, target=target, detail=facts)


def context_for(
    tenant: Tenant,
    client: PbsClient,
    state: PbsState | None = None,
    *,
    actor: Any = None,
    run: OnboardingRun | None = None,
) -> StepContext:
    if tenant.host is None or tenant.datastore is None:
        raise ValueError(f"tenant {tenant.slug} has no placement")
    return StepContext(
        client=client,
        state=state or LiveState(client),
        tenant=tenant,
        host=tenant.host,
        store=tenant.datastore.name,
        names=stored_names(tenant),
        actor=actor,
        run=run,
        options=dict(run.options) if run is not None else {},
    )


# --- onboarding / repair steps -------------------------------------------------------------


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
                created_by=ctx.actor if getattr(ctx.actor, "is_authenticated", False) else None,
                secret_enc=encrypt_secret(secret),
            )
        else:
            row.secret_enc = encrypt_secret(secret)
            row.revealed_at = None
            row.revealed_by = None
            row.save(update_fields=["secret_enc", "revealed_at", "revealed_by"])
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


# --- offboarding steps ---------------------------------------------------------------------


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
    actor = ctx.actor if getattr(ctx.actor, "is_authenticated", False) else None
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


# --- running a run ---------------------------------------------------------------------------


def _claim(run_id: int) -> bool:
    now = timezone.now()
    return bool(
        OnboardingRun.objects.filter(pk=run_id, status__in=LIVE_STATUSES)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(
            status=OnboardingRun.Status.RUNNING,
            claimed_until=now + lease(),
            attempts=F("attempts") + 1,
            started_at=Coalesce(F("started_at"), now),
        )
    )


def _release(run_id: int) -> None:
    OnboardingRun.objects.filter(pk=run_id).update(claimed_until=None)


def _explain(exc: BaseException, ctx_host: PbsHost, step: str, store: str) -> tuple[str, str]:
    if isinstance(exc, OwnershipConflict | VerificationFailed):
        return exc.message, exc.hint
    if isinstance(exc, PbsError):
        return str(exc), hint_for(exc, host=ctx_host, step=step, store=store)
    if isinstance(exc, OperationalError):
        return f"database error: {exc}", "The portal's database was busy or unreachable; retry."
    return (
        f"unexpected error ({type(exc).__name__}): {exc}",
        "This is a bug in the portal; the run can be retried safely. Please report it.",
    )


def _finish_run(run: OnboardingRun, ctx: StepContext) -> None:
    tenant = ctx.tenant
    now = timezone.now()
    with transaction.atomic():
        OnboardingRun.objects.filter(pk=run.pk).update(
            status=OnboardingRun.Status.SUCCEEDED, finished_at=now, claimed_until=None,
            error="", error_hint="",
        )  # fmt: skip
        if run.kind == OnboardingRun.Kind.OFFBOARD:
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.OFFBOARDED, offboarded_at=now)
            action = "tenant.offboard.finished"
        else:
            updates: dict[str, Any] = {}
            if tenant.status in (
                Tenant.Status.PENDING, Tenant.Status.ONBOARDING, Tenant.Status.FAILED
            ):  # fmt: skip
                updates["status"] = Tenant.Status.ACTIVE
            if tenant.activated_at is None:
                updates["activated_at"] = now
            if updates:
                Tenant.objects.filter(pk=tenant.pk).update(**updates)
            action = f"tenant.{run.kind}.finished"
        audit_record(
            action=action, actor=ctx.actor, tenant=tenant, target=tenant.slug,
            detail={"run": run.pk, "attempts": run.attempts},
        )  # fmt: skip
        transaction.on_commit(lambda: _announce_finished(run, tenant))


def _announce_finished(run: OnboardingRun, tenant: Tenant) -> None:
    send_logged(tenant_run_finished, OnboardingRun, tenant_id=tenant.pk, run_id=run.pk, kind=run.kind)


def _fail_run(run: OnboardingRun, tenant: Tenant, actor: Any, error: str, hint: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        OnboardingRun.objects.filter(pk=run.pk).update(
            status=OnboardingRun.Status.FAILED, finished_at=now, claimed_until=None,
            error=error[:4000], error_hint=hint[:4000],
        )  # fmt: skip
        if run.kind == OnboardingRun.Kind.ONBOARD and tenant.status in (
            Tenant.Status.PENDING, Tenant.Status.ONBOARDING
        ):  # fmt: skip
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.FAILED)
        audit_record(
            action=f"tenant.{run.kind}.failed", actor=actor, tenant=tenant, target=tenant.slug,
            result="failed", detail={"run": run.pk, "error": error[:500]},
        )  # fmt: skip


def run_execute(
    *,
    run_id: int,
    client: PbsClient | None = None,
    state: PbsState | None = None,
    final_attempt: bool = False,
) -> RunResult:
    """Execute (or resume) one run. Steps already done are skipped.

    1. Claim the run's lease (a conditional update); if someone else holds it: BUSY.
    2. For each unfinished step: mark it running, call its function, record the outcome.
    3. A transient error leaves the step pending and returns RETRY (or, on the final
       attempt, fails the run); a permanent error fails the run with a hint.
    4. All steps done: the run succeeds and the tenant becomes active (or offboarded).
    """
    if not _claim(run_id):
        run = OnboardingRun.objects.filter(pk=run_id).only("status").first()
        if run is None or run.status not in LIVE_STATUSES:
            return RunResult.GONE
        return RunResult.BUSY
    run = OnboardingRun.objects.select_related("tenant__host", "tenant__datastore", "created_by").get(pk=run_id)
    tenant = run.tenant
    actor = run.created_by
    if run.kind == OnboardingRun.Kind.ONBOARD and tenant.status in (
        Tenant.Status.PENDING, Tenant.Status.FAILED
    ):  # fmt: skip
        Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.ONBOARDING)
        tenant.status = Tenant.Status.ONBOARDING
    if tenant.host is None or tenant.datastore is None:
        _fail_run(run, tenant, actor, "The tenant has no placement.", "Choose a host and datastore.")
        return RunResult.FAILED
    own_client = client is None
    current = ""
    try:
        if client is None:
            client = client_for_host(tenant.host)
        ctx = context_for(tenant, client, state, actor=actor, run=run)
        functions = OFFBOARD_STEP_FUNCTIONS if run.kind == OnboardingRun.Kind.OFFBOARD else STEP_FUNCTIONS
        lease_renew_at = timezone.now() + lease() / 2
        for step in run.steps.all():
            if step.state == OnboardingStep.State.DONE:
                continue
            current = step.name
            step.state = OnboardingStep.State.RUNNING
            step.attempts += 1
            step.started_at = step.started_at or timezone.now()
            step.save(update_fields=["state", "attempts", "started_at"])
            ctx.notes = []
            try:
                outcome = functions[step.name](ctx)
            except Exception as exc:
                error, hint = _explain(exc, tenant.host, step.name, ctx.store)
                transient = is_transient(exc)
                step.state = (
                    OnboardingStep.State.PENDING if transient and not final_attempt else OnboardingStep.State.FAILED
                )
                step.last_error = error[:4000]
                step.save(update_fields=["state", "last_error"])
                if not isinstance(exc, PbsError | OwnershipConflict | VerificationFailed):
                    log.exception("onboarding run %s step %s failed", run.pk, step.name)
                if transient and not final_attempt:
                    OnboardingRun.objects.filter(pk=run.pk).update(
                        error=f"{STEP_LABELS.get(step.name, step.name)}: {error} (will retry)"[:4000],
                        error_hint=hint[:4000],
                    )
                    return RunResult.RETRY
                if transient:
                    hint = f"Gave up after {run.attempts} attempts. {hint}"
                _fail_run(run, tenant, actor, f"{STEP_LABELS.get(step.name, step.name)}: {error}", hint)
                return RunResult.FAILED
            step.state = OnboardingStep.State.DONE
            step.outcome = outcome[:16]
            step.detail = "; ".join(ctx.notes)[:255]
            step.last_error = ""
            step.finished_at = timezone.now()
            step.save(update_fields=["state", "outcome", "detail", "last_error", "finished_at"])
            # Renew the lease once half of it is used up (not after every step: each
            # database write costs a commit, and a run takes seconds, the lease minutes).
            now = timezone.now()
            if now >= lease_renew_at:
                OnboardingRun.objects.filter(pk=run.pk).update(claimed_until=now + lease())
                lease_renew_at = now + lease() / 2
        _finish_run(run, ctx)
        return RunResult.SUCCEEDED
    except Exception as exc:
        # Outside any step (building the client, reading steps): same rules.
        error, hint = _explain(exc, tenant.host, current, tenant.datastore.name)
        if is_transient(exc) and not final_attempt:
            OnboardingRun.objects.filter(pk=run.pk).update(error=f"{error} (will retry)"[:4000])
            return RunResult.RETRY
        log.exception("onboarding run %s failed outside a step", run.pk)
        _fail_run(run, tenant, actor, error, hint)
        return RunResult.FAILED
    finally:
        _release(run_id)
        if own_client and client is not None:
            client.close()


def batch_execute(*, run_ids: list[int], final_attempt: bool = False) -> dict[int, RunResult]:
    """Execute many runs, one host at a time, sharing one client and one snapshot of the
    host's users, ACLs, prune jobs and namespaces: N tenants cost a few list calls plus
    only the writes."""
    runs = OnboardingRun.objects.filter(pk__in=run_ids).select_related("tenant__host").order_by("tenant__host_id", "pk")
    by_host: dict[int | None, list[OnboardingRun]] = {}
    for run in runs:
        by_host.setdefault(run.tenant.host_id, []).append(run)
    results: dict[int, RunResult] = dict.fromkeys(run_ids, RunResult.GONE)
    for host_runs in by_host.values():
        host = host_runs[0].tenant.host
        if host is None:
            for run in host_runs:
                results[run.pk] = run_execute(run_id=run.pk, final_attempt=final_attempt)
            continue
        with client_for_host(host) as client:
            state = SnapshotState(client)
            for run in host_runs:
                results[run.pk] = run_execute(run_id=run.pk, client=client, state=state, final_attempt=final_attempt)
    return results


def runs_drive(
    *,
    run_ids: list[int],
    timeout: float = 600.0,
    sleep: Callable[[float], None] | None = None,
) -> dict[int, RunResult]:
    """Drive runs to an end in this process (management commands with --wait).

    Runs are executed here (in per-host batches) unless a worker holds their lease, in
    which case this waits for the worker. Transient errors are retried with backoff up
    to PORTAL_ONBOARDING_MAX_RETRIES, like the Celery task would.
    """
    import random
    import time

    sleep = sleep or time.sleep
    deadline = time.monotonic() + timeout
    pending = list(run_ids)
    results: dict[int, RunResult] = {}
    attempt = 0
    while pending:
        final = attempt >= settings.PORTAL_ONBOARDING_MAX_RETRIES or time.monotonic() >= deadline
        round_results = batch_execute(run_ids=pending, final_attempt=final)
        busy_done = [run_id for run_id, result in round_results.items() if result is RunResult.GONE]
        for run_id, result in round_results.items():
            if result in (RunResult.SUCCEEDED, RunResult.FAILED):
                results[run_id] = result
        for run_id in busy_done:
            run = OnboardingRun.objects.filter(pk=run_id).only("status").first()
            results[run_id] = (
                RunResult.SUCCEEDED
                if run is not None and run.status == OnboardingRun.Status.SUCCEEDED
                else RunResult.FAILED
            )
        pending = [run_id for run_id, result in round_results.items() if result in (RunResult.RETRY, RunResult.BUSY)]
        if not pending:
            break
        if time.monotonic() >= deadline and final:
            for run_id in pending:
                results[run_id] = RunResult.BUSY
            break
        busy_only = all(round_results[run_id] is RunResult.BUSY for run_id in pending)
        if busy_only:
            sleep(1.0)
        else:
            attempt += 1
            base = settings.PORTAL_ONBOARDING_RETRY_BASE_SECONDS
            sleep(random.uniform(0, min(60.0, base * 2**attempt)))  # noqa: S311 (jitter)
    return results
