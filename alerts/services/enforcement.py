"""Quota enforcement on PBS: backup tokens lose and regain write rights as the quota state says."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from alerts.models import (
    QuotaState,
)
from alerts.services.base import PRIV_BACKUP, PRIV_READ, QuotaEnforcementError, _gib, _now
from alerts.services.quota import _enforcement_sync_later
from audit.services import audit_record
from tenants.models import Tenant, TenantToken
from tenants.pbs import client_for_host
from tenants.services import LifecycleError, tenant_writes_set

# Writes blocked by quota carry this prefix in Tenant.writes_blocked_reason, so quota never
# lifts a block somebody else set.
QUOTA_BLOCK_REASON_PREFIX = "quota:"


def tenant_backup_tokenids(tenant: Tenant) -> list[str]:
    return list(
        TenantToken.objects.filter(
            tenant=tenant, purpose=TenantToken.Purpose.BACKUP, revoked_at__isnull=True
        )
        .order_by("tokenid")
        .values_list("tokenid", flat=True)
    )


def tenant_privileges_read(*, tenant: Tenant, client: Any) -> dict[str, dict[str, bool]]:
    """Effective privileges on the namespace path of the tenant user and each live token,
    from /access/permissions: {auth_id: {privilege: propagate}}."""
    path = tenant.acl_path
    auth_ids = [tenant.pbs_userid] if tenant.pbs_userid else []
    auth_ids += list(
        TenantToken.objects.filter(tenant=tenant, revoked_at__isnull=True)
        .order_by("tokenid")
        .values_list("tokenid", flat=True)
    )
    result: dict[str, dict[str, bool]] = {}
    for auth_id in auth_ids:
        permissions = client.permissions_get(auth_id=auth_id, path=path)
        result[auth_id] = dict(permissions.get(path, {}))
    return result


def tenant_privileges_problems(
    *, tenant: Tenant, privileges: dict[str, dict[str, bool]], blocked: bool
) -> list[str]:
    """What is wrong with the effective privileges for the wanted state (empty = as expected):
    the user and backup tokens have Datastore.Backup exactly when writes are allowed; the user
    and restore tokens always keep Datastore.Read."""
    problems: list[str] = []
    backup_tokens = set(tenant_backup_tokenids(tenant))
    for auth_id, privs in privileges.items():
        is_user = auth_id == tenant.pbs_userid
        if (is_user or auth_id in backup_tokens) and (PRIV_BACKUP in privs) == blocked:
            problems.append(f"{auth_id} {'still has' if blocked else 'lacks'} {PRIV_BACKUP}")
        if auth_id not in backup_tokens and PRIV_READ not in privs:
            problems.append(f"{auth_id} lacks {PRIV_READ}")
    return problems


def _quota_block_reason(state: QuotaState) -> str:
    return (
        f"{QUOTA_BLOCK_REASON_PREFIX} {state.state}, {_gib(state.usage_bytes)} used "
        f"(soft {_gib(state.soft_limit_bytes)}, hard {_gib(state.hard_limit_bytes)})"
    )


def quota_enforcement_sync(
    *, tenant_id: int, client: Any = None, now: datetime | None = None
) -> QuotaState | None:
    """Make PBS write rights match the tenant's quota state, then verify with /access/permissions.

    Steps:
    1. Read the wanted state (enforced + stop-writes + not exempt = writes blocked).
    2. Skip tenants that are not on PBS (not active or suspended); never lift a write block
       that something other than quota set.
    3. tenants.services.tenant_writes_set: removes DatastorePowerUser from the user and
       DatastoreBackup from the backup token (or puts them back), check-before-change, keeps
       DatastoreReader; suspension and quota blocks never undo each other.
    4. Read effective privileges of the user and every live token and compare them with the
       wanted state; store them. A mismatch or PBS error is recorded and raised (the task
       retries with backoff); a mismatch the shared mechanism would not fix by itself
       (its flag was already set) starts a tenants repair run first.
    5. If the wanted state changed meanwhile, go again.
    """
    now = _now(now)
    state = QuotaState.objects.select_related("tenant").filter(tenant_id=tenant_id).first()
    if state is None:
        return None
    tenant = state.tenant
    want_blocked = state.wants_writes_blocked

    def record(**fields: Any) -> QuotaState:
        QuotaState.objects.filter(pk=state.pk).update(**fields)
        return QuotaState.objects.get(pk=state.pk)

    if tenant.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        return record(writes_blocked=False, pbs_error=f"tenant is {tenant.status}: nothing to change on PBS")
    foreign_block = tenant.writes_blocked and not tenant.writes_blocked_reason.startswith(QUOTA_BLOCK_REASON_PREFIX)
    if not want_blocked and foreign_block:
        return record(writes_blocked=False, writes_changed_at=now, pbs_error="")


    # tenant_writes_set does nothing when its flag already matches; if PBS still differs then
    # (an earlier attempt failed half-way), a tenants repair run converges it.
    flag_already_set = tenant.writes_blocked == want_blocked
    try:
        if not (want_blocked and foreign_block):
            # The one mechanism that stops and restores writes (shared with suspension; it keeps
            # Tenant.writes_blocked, which the drift check honours).
            tenant_writes_set(
                tenant_id=tenant.pk, allowed=not want_blocked,
                reason=_quota_block_reason(state) if want_blocked else "quota: back within the limits",
            )
        tenant.refresh_from_db()
        own_client = client is None
        if own_client:
            client = client_for_host(tenant.host, purpose="automation")
        try:
            privileges = tenant_privileges_read(tenant=tenant, client=client)
        finally:
            if own_client:
                client.close()
    except (LifecycleError, ValidationError) as exc:
        message = getattr(exc, "message", None) or "; ".join(getattr(exc, "messages", [str(exc)]))
        record(pbs_error=str(message)[:2000])
        raise QuotaEnforcementError(f"{tenant.slug}: {message}") from exc
    except Exception as exc:
        record(pbs_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise

    effective_blocked = want_blocked or not tenant.writes_allowed
    problems = tenant_privileges_problems(tenant=tenant, privileges=privileges, blocked=effective_blocked)
    with transaction.atomic():
        locked = QuotaState.objects.select_for_update().get(pk=state.pk)
        fields: dict[str, Any] = {
            "pbs_privileges": privileges, "pbs_verified_at": now, "pbs_error": "; ".join(problems),
        }
        changed = not problems and locked.writes_blocked != want_blocked
        if not problems:
            fields["writes_blocked"] = want_blocked
        if changed:
            fields["writes_changed_at"] = now
        QuotaState.objects.filter(pk=state.pk).update(**fields)
        if changed or problems:
            audit_record(
                action="quota.writes_stopped" if want_blocked else "quota.writes_restored",
                tenant=tenant, target=tenant.acl_path, result="failed" if problems else "ok",
                detail={"problems": problems, "privileges": privileges},
            )
        if not problems and locked.wants_writes_blocked != want_blocked:
            transaction.on_commit(lambda: _enforcement_sync_later(tenant_id))
    if problems:
        if flag_already_set:
            from tenants.services import tenant_repair

            run, _ = tenant_repair(tenant_id=tenant.pk)
            problems.append(f"repair run {run.pk} started")
            record(pbs_error="; ".join(problems))
        raise QuotaEnforcementError(f"{tenant.slug}: " + "; ".join(problems))
    return QuotaState.objects.get(pk=state.pk)
