"""Writes for quotas, alerts and webhooks.

Every state change is one transaction with its audit row; mail, webhooks and PBS changes run
after commit (Celery), so a rolled-back evaluation never announces or enforces anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from alerts import quota, selectors
from alerts.models import (
    Alert,
    BackupHealth,
    PlanQuota,
    QuotaAction,
    QuotaState,
    QuotaTransition,
    TenantAlertSettings,
    TenantQuota,
    WebhookDelivery,
)
from audit.services import audit_record
from core.crypto import decrypt_secret, encrypt_secret
from offsite.models import TenantOffsite
from pbsclient.errors import NotFound, PbsConnectionError, PbsError
from tenants.models import Tenant, TenantToken
from tenants.services import LifecycleError, tenant_writes_set

logger = logging.getLogger(__name__)

# Privileges the enforcement is verified by (the tenant PBS design, tenants/): write rights
# come and go, Datastore.Read always stays so restores keep working.
PRIV_BACKUP = "Datastore.Backup"
PRIV_READ = "Datastore.Read"

QUOTA_ALERT_KINDS = {
    quota.WARNING: Alert.Kind.QUOTA_WARNING,
    quota.OVER: Alert.Kind.QUOTA_OVER,
    quota.ENFORCED: Alert.Kind.QUOTA_ENFORCED,
}
QUOTA_KIND_LEVEL = {kind: quota.STATE_ORDER[state] for state, kind in QUOTA_ALERT_KINDS.items()}

VERIFY_CHECK_INTERVAL = timedelta(hours=6)


class QuotaError(ValueError):
    """A staff quota action that cannot be applied (message is shown to the user)."""


class QuotaEnforcementError(RuntimeError):
    """PBS did not end up with the expected privileges after a change."""


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _gib(value: Decimal | int | None) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value) / quota.GIB:.2f} GiB"


# --------------------------------------------------------------------------- quota policy


def _policy_fields_validate(
    *,
    soft_limit_gib: Decimal | None,
    hard_limit_gib: Decimal | None,
    warning_percent: int | None,
    grace_days: int | None,
    action: str | None,
) -> None:
    for name, value in (("soft limit", soft_limit_gib), ("hard limit", hard_limit_gib)):
        if value is not None and value <= 0:
            raise QuotaError(f"the {name} must be positive")
    if soft_limit_gib is not None and hard_limit_gib is not None and hard_limit_gib < soft_limit_gib:
        raise QuotaError("the hard limit must not be below the soft limit")
    if warning_percent is not None and not 1 <= warning_percent <= 100:
        raise QuotaError("the warning percentage must be between 1 and 100")
    if grace_days is not None and grace_days > 365:
        raise QuotaError("the grace period must be at most 365 days")
    if action and action not in QuotaAction.values:
        raise QuotaError(f"unknown action {action!r}")


def plan_quota_set(
    *,
    plan_id: int,
    soft_limit_gib: Decimal | None,
    hard_limit_gib: Decimal | None,
    warning_percent: int | None = None,
    grace_days: int | None = None,
    action: str | None = None,
    actor: Any = None,
) -> PlanQuota:
    """Set a plan's quota and re-evaluate its tenants (lifting enforcement where it no longer
    applies)."""
    _policy_fields_validate(
        soft_limit_gib=soft_limit_gib, hard_limit_gib=hard_limit_gib,
        warning_percent=warning_percent, grace_days=grace_days, action=action,
    )
    with transaction.atomic():
        row, _ = PlanQuota.objects.update_or_create(
            plan_id=plan_id,
            defaults={
                "soft_limit_gib": soft_limit_gib, "hard_limit_gib": hard_limit_gib,
                "warning_percent": warning_percent, "grace_days": grace_days, "action": action or "",
            },
        )
        audit_record(
            action="quota.plan_set", actor=actor, target=f"plan:{plan_id}",
            detail=_policy_detail(row),
        )
        tenant_ids = list(
            QuotaState.objects.filter(tenant__plan_id=plan_id).values_list("tenant_id", flat=True)
        )
        transaction.on_commit(lambda: _reevaluate_later(tenant_ids))
    return row


def tenant_quota_set(
    *,
    tenant_id: int,
    soft_limit_gib: Decimal | None,
    hard_limit_gib: Decimal | None,
    warning_percent: int | None = None,
    grace_days: int | None = None,
    action: str | None = None,
    actor: Any = None,
    now: datetime | None = None,
) -> QuotaState:
    """Override the plan's quota for one tenant (None = use the plan's) and re-evaluate now."""
    _policy_fields_validate(
        soft_limit_gib=soft_limit_gib, hard_limit_gib=hard_limit_gib,
        warning_percent=warning_percent, grace_days=grace_days, action=action,
    )
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        row, _ = TenantQuota.objects.update_or_create(
            tenant=tenant,
            defaults={
                "soft_limit_gib": soft_limit_gib, "hard_limit_gib": hard_limit_gib,
                "warning_percent": warning_percent, "grace_days": grace_days,
                "action": action or "", "updated_by": actor if _is_user(actor) else None,
            },
        )
        audit_record(
            action="quota.tenant_set", actor=actor, tenant=tenant, target=tenant.slug,
            detail=_policy_detail(row),
        )
        return quota_evaluate_tenant(tenant_id=tenant_id, now=now, trigger="limits changed")


def tenant_quota_clear(*, tenant_id: int, actor: Any = None, now: datetime | None = None) -> QuotaState:
    """Drop a tenant's override so the plan's quota applies again."""
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        deleted, _ = TenantQuota.objects.filter(tenant=tenant).delete()
        if deleted:
            audit_record(action="quota.tenant_cleared", actor=actor, tenant=tenant, target=tenant.slug)
        return quota_evaluate_tenant(tenant_id=tenant_id, now=now, trigger="limits changed")


def _policy_detail(row: PlanQuota | TenantQuota) -> dict[str, Any]:
    return {
        "soft_limit_gib": None if row.soft_limit_gib is None else str(row.soft_limit_gib),
        "hard_limit_gib": None if row.hard_limit_gib is None else str(row.hard_limit_gib),
        "warning_percent": row.warning_percent,
        "grace_days": row.grace_days,
        "action": row.action,
    }


def _is_user(actor: Any) -> bool:
    return actor is not None and getattr(actor, "is_authenticated", False)


def _reevaluate_later(tenant_ids: list[int]) -> None:
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    for tenant_id in tenant_ids:
        tasks.quota_evaluate.delay(tenant_id)


# --------------------------------------------------------------------------- quota evaluation


def quota_evaluate_tenant(
    *,
    tenant_id: int,
    sample_id: int | None = None,
    usage_bytes: int | None = None,
    now: datetime | None = None,
    trigger: str = "sample",
) -> QuotaState:
    """Evaluate a tenant's quota and record the outcome.

    Steps:
    1. Lock the tenant's QuotaState (created on first use).
    2. Take the usage: after a sample (``sample_id`` given) the tenant's newest
       billing.UsageSample on the plan's metric (so out-of-order tasks and back-filled days
       never win over a newer figure); else ``usage_bytes``, or the last stored figure
       (limits changed, grace extended, exemption).
    3. Run the pure state machine (alerts.quota.quota_evaluate).
    4. Store the state; on a change write a QuotaTransition and an audit row.
    5. Raise/resolve the quota alerts (notices go out after commit).
    6. If PBS write rights must change, enqueue the enforcement sync after commit.
    """
    now = _now(now)
    with transaction.atomic():
        tenant = Tenant.objects.select_related("plan").get(pk=tenant_id)
        QuotaState.objects.get_or_create(tenant=tenant)
        state = QuotaState.objects.select_for_update().get(tenant=tenant)
        metric = selectors.tenant_metric(tenant)

        if sample_id is not None:
            figure = selectors.usage_latest_for_tenant(tenant_id=tenant_id, metric=metric)
            if figure is None:
                return state
            usage = figure.usage_bytes
            state.last_sample_id = figure.sample_id
        elif usage_bytes is not None:
            usage = usage_bytes
        else:
            usage = state.usage_bytes

        policy = selectors.quota_policy_for_tenant(tenant)
        result = quota.quota_evaluate(
            policy=policy, usage_bytes=usage, now=now,
            over_since=state.over_since, grace_ends_at=state.grace_ends_at, exempt=state.exempt,
        )
        previous = state.state
        state.state = result.state
        state.metric = metric
        state.usage_bytes = usage
        state.soft_limit_bytes = policy.soft_limit_bytes
        state.hard_limit_bytes = policy.hard_limit_bytes
        state.warning_bytes = policy.warning_bytes
        state.action = policy.action
        state.over_since = result.over_since
        state.grace_ends_at = result.grace_ends_at
        state.evaluated_at = now
        if result.state != previous:
            state.state_changed_at = now
            if result.state == quota.ENFORCED:
                state.enforced_at = now
            elif previous == quota.ENFORCED:
                state.enforced_at = None
            QuotaTransition.objects.create(
                tenant=tenant, from_state=previous, to_state=result.state, usage_bytes=usage,
                reason=f"{trigger}: {result.reason}"[:255],
                sample_id=state.last_sample_id if sample_id is not None else None, created_at=now,
            )
            audit_record(
                action="quota.transition", tenant=tenant, target=tenant.slug,
                detail={
                    "from": previous, "to": result.state, "usage_bytes": usage,
                    "reason": result.reason, "trigger": trigger,
                    "grace_ends_at": result.grace_ends_at.isoformat() if result.grace_ends_at else None,
                },
            )
        state.save()
        _quota_alerts_sync(tenant=tenant, state=state, previous=previous, now=now)
        if state.wants_writes_blocked != state.writes_blocked:
            transaction.on_commit(lambda: _enforcement_sync_later(tenant_id))
    return state


def tenant_usage_sampled(*, tenant_id: int, sample_id: int, now: datetime | None = None) -> QuotaState:
    """A metering sample was stored: evaluate the quota, and the backup age from the sample."""
    state = quota_evaluate_tenant(tenant_id=tenant_id, sample_id=sample_id, now=now, trigger="sample")
    backup_age_from_metering(tenant_id=tenant_id, now=now)
    return state


def _enforcement_sync_later(tenant_id: int) -> None:
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    tasks.quota_enforcement_sync.delay(tenant_id)


def _quota_alerts_sync(*, tenant: Tenant, state: QuotaState, previous: str, now: datetime) -> None:
    """Keep exactly one quota alert open for the current level.

    Moving up supersedes the lower alert quietly (the new one is announced); moving down
    resolves the higher alert with a recovery notice."""
    target_kind = QUOTA_ALERT_KINDS.get(state.state)
    level = quota.STATE_ORDER[state.state]
    for kind, kind_level in QUOTA_KIND_LEVEL.items():
        if kind == target_kind:
            continue
        recovered = kind_level > level
        alert_resolve(
            tenant=tenant, kind=kind, now=now, announce=recovered,
            resolution=Alert.Resolution.RECOVERED if recovered else Alert.Resolution.SUPERSEDED,
        )
    if target_kind is None:
        return
    usage = _gib(state.usage_bytes)
    soft = _gib(state.soft_limit_bytes)
    if state.state == quota.WARNING:
        title = f"Backup storage at {state.usage_percent_of_soft}% of the quota"
        message = f"Usage is {usage} of a {soft} soft limit."
        severity = Alert.Severity.INFO
    elif state.state == quota.OVER:
        grace = state.grace_ends_at.strftime("%Y-%m-%d %H:%M %Z") if state.grace_ends_at else "-"
        title = "Backup storage over the quota"
        message = f"Usage is {usage}, over the {soft} soft limit. Grace period ends {grace}."
        if state.exempt:
            message += " The tenant is exempt from enforcement."
        elif state.action == quota.STOP_WRITES:
            message += " After that, new backups are refused; restores keep working."
        else:
            message += " After that, the overage is billed."
        severity = Alert.Severity.WARNING
    else:
        title = "Backup quota enforced"
        if state.action == quota.STOP_WRITES:
            message = (
                f"Usage is {usage} (soft limit {soft}, hard limit {_gib(state.hard_limit_bytes)}). "
                "New backups are refused until usage drops below the soft limit or the limit "
                "is raised; existing backups stay and restores keep working."
            )
        else:
            message = f"Usage is {usage}, over the {soft} soft limit; the overage is billed."
        severity = Alert.Severity.CRITICAL
    alert_raise(
        tenant=tenant, kind=target_kind, title=title, message=message, severity=severity, now=now,
        detail={
            "state": state.state, "usage_bytes": state.usage_bytes,
            "soft_limit_bytes": state.soft_limit_bytes, "hard_limit_bytes": state.hard_limit_bytes,
            "action": state.action,
            "grace_ends_at": state.grace_ends_at.isoformat() if state.grace_ends_at else None,
        },
    )


def quota_grace_extend(
    *, tenant_id: int, until: datetime, reason: str, actor: Any, now: datetime | None = None
) -> QuotaState:
    """Move the end of a running (or ended) grace period to ``until``; lifts enforcement that
    came from the grace ending."""
    now = _now(now)
    reason = reason.strip()
    if not reason:
        raise QuotaError("a reason is required")
    if until <= now:
        raise QuotaError("the new grace end must be in the future")
    with transaction.atomic():
        state = QuotaState.objects.select_for_update().select_related("tenant").filter(tenant_id=tenant_id).first()
        if state is None or state.over_since is None:
            raise QuotaError("the tenant is not over its quota, there is no grace period to extend")
        if state.hard_limit_bytes is not None and (state.usage_bytes or 0) >= state.hard_limit_bytes:
            raise QuotaError(
                "usage is at or above the hard limit, which no grace covers: raise the limit or "
                "exempt the tenant"
            )
        previous_end = state.grace_ends_at
        QuotaState.objects.filter(pk=state.pk).update(
            grace_ends_at=until, grace_extended_at=now,
            grace_extended_by=actor if _is_user(actor) else None, grace_extension_reason=reason,
        )
        audit_record(
            action="quota.grace_extended", actor=actor, tenant=state.tenant, target=state.tenant.slug,
            detail={
                "from": previous_end.isoformat() if previous_end else None,
                "to": until.isoformat(), "reason": reason,
            },
        )
        return quota_evaluate_tenant(tenant_id=tenant_id, now=now, trigger="grace extended")


def quota_exempt_set(
    *, tenant_id: int, exempt: bool, reason: str, actor: Any, now: datetime | None = None
) -> QuotaState:
    """Exempt a tenant from enforcement (or end the exemption); restores write rights at once."""
    now = _now(now)
    reason = reason.strip()
    if not reason:
        raise QuotaError("a reason is required")
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        QuotaState.objects.get_or_create(tenant=tenant)
        QuotaState.objects.select_for_update().filter(tenant=tenant).update(
            exempt=exempt, exempt_reason=reason, exempt_at=now,
            exempt_by=actor if _is_user(actor) else None,
        )
        audit_record(
            action="quota.exempted" if exempt else "quota.exemption_ended", actor=actor,
            tenant=tenant, target=tenant.slug, detail={"reason": reason},
        )
        return quota_evaluate_tenant(
            tenant_id=tenant_id, now=now, trigger="exempted" if exempt else "exemption ended"
        )


# --------------------------------------------------------------------------- PBS enforcement


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
            from tenants.pbs import client_for_host

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


# --------------------------------------------------------------------------- alerts


def alert_raise(
    *,
    tenant: Tenant,
    kind: str,
    title: str,
    key: str = "",
    message: str = "",
    severity: str = Alert.Severity.WARNING,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Alert:
    """Open (or refresh) the alert for the condition (tenant, kind, key) and announce it,
    at most once per day per condition (over all its alerts, so a flapping condition does
    not announce more often either). Notices are sent after commit."""
    now = _now(now)
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(tenant=tenant, kind=kind, key=key, status=Alert.Status.OPEN)
            .first()
        )
        if alert is None:
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        tenant=tenant, kind=kind, key=key, severity=severity, title=title[:200],
                        message=message, detail=detail or {}, opened_at=now, last_seen_at=now,
                    )
            except IntegrityError:
                # Someone opened it concurrently; refresh theirs.
                alert = Alert.objects.select_for_update().get(
                    tenant=tenant, kind=kind, key=key, status=Alert.Status.OPEN
                )
        Alert.objects.filter(pk=alert.pk).update(
            last_seen_at=now, title=title[:200], message=message, severity=severity, detail=detail or {}
        )
        last = selectors.alert_condition_last_notified(tenant_id=tenant.pk, kind=kind, key=key)
        if last is None or now - last >= selectors.ALERT_REPEAT_INTERVAL:
            Alert.objects.filter(pk=alert.pk).update(last_notified_at=now, notify_count=F("notify_count") + 1)
            alert.refresh_from_db()
            _notices_queue(alert=alert, event="alert.raised", now=now)
        else:
            alert.refresh_from_db()
    return alert


def alert_resolve(
    *,
    tenant: Tenant,
    kind: str,
    key: str = "",
    now: datetime | None = None,
    announce: bool = True,
    resolution: str = Alert.Resolution.RECOVERED,
) -> Alert | None:
    """Close the open alert of the condition, if any. The recovery is announced once, and only
    if the alert itself was announced."""
    now = _now(now)
    with transaction.atomic():
        alert = (
            Alert.objects.select_for_update()
            .filter(tenant=tenant, kind=kind, key=key, status=Alert.Status.OPEN)
            .first()
        )
        if alert is None:
            return None
        alert.status = Alert.Status.RESOLVED
        alert.resolved_at = now
        alert.resolution = resolution
        fields = ["status", "resolved_at", "resolution"]
        if announce and alert.notify_count > 0 and alert.recovery_notified_at is None:
            alert.recovery_notified_at = now
            fields.append("recovery_notified_at")
            alert.save(update_fields=fields)
            _notices_queue(alert=alert, event="alert.resolved", now=now)
        else:
            alert.save(update_fields=fields)
    return alert


def alert_resolve_all_except(
    *, tenant: Tenant, kind: str, keep_keys: set[str], now: datetime | None = None
) -> int:
    """Resolve (with recovery notices) every open alert of ``kind`` whose key is not kept."""
    keys = list(
        Alert.objects.filter(tenant=tenant, kind=kind, status=Alert.Status.OPEN)
        .exclude(key__in=keep_keys)
        .values_list("key", flat=True)
    )
    for key in keys:
        alert_resolve(tenant=tenant, kind=kind, key=key, now=now)
    return len(keys)


def _notices_queue(*, alert: Alert, event: str, now: datetime) -> None:
    """Queue the e-mail and the webhook deliveries for an announcement (inside the caller's
    transaction; sending happens after commit)."""
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    alert_id = alert.pk
    transaction.on_commit(lambda: tasks.alert_email_send.delay(alert_id, event))
    for delivery in webhook_deliveries_create(alert=alert, event=event, now=now):
        delivery_id = delivery.pk
        transaction.on_commit(lambda d=delivery_id: tasks.webhook_deliver.delay(d))


def alert_email_send(*, alert_id: int, event: str) -> int:
    """Mail one announcement to the tenant's contacts and to MSP staff. Returns messages sent."""

    alert = Alert.objects.select_related("tenant").filter(pk=alert_id).first()
    if alert is None:
        return 0
    tenant = alert.tenant
    context = {
        "alert": alert, "tenant": tenant, "resolved": event == "alert.resolved",
        "portal_url": getattr(settings, "PORTAL_BASE_URL", ""),
    }
    subject_prefix = "Resolved: " if event == "alert.resolved" else ""
    sent = 0
    audiences = (
        (selectors.alert_recipients_for_tenant(tenant), "client"),
        (selectors.alert_staff_recipients(), "staff"),
    )
    for recipients, audience in audiences:
        if not recipients:
            continue
        body = render_to_string("alerts/email/alert.txt", {**context, "audience": audience})
        subject = f"[PBS Portal] {tenant.name}: {subject_prefix}{alert.title}"
        sent += EmailMessage(
            subject=subject.replace("\n", " ")[:250], body=body, to=recipients
        ).send()
    return sent


# --------------------------------------------------------------------------- webhooks


def tenant_webhook_set(
    *, tenant_id: int, url: str, enabled: bool = True, secret: str | None = None,
    regenerate_secret: bool = False, actor: Any = None,
) -> tuple[TenantAlertSettings, str | None]:
    """Configure a tenant's outgoing webhook. A secret is generated when none is kept (or on
    request); the new secret is returned once to show to the user and never again."""
    url = url.strip()
    if enabled and not url.startswith(("https://", "http://")):
        raise QuotaError("the webhook URL must be http(s)")
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        row, _ = TenantAlertSettings.objects.select_for_update().get_or_create(tenant=tenant)
        new_secret = None
        if secret:
            row.webhook_secret_enc = encrypt_secret(secret)
        elif regenerate_secret or not row.webhook_secret_enc:
            new_secret = secrets.token_urlsafe(32)
            row.webhook_secret_enc = encrypt_secret(new_secret)
        row.webhook_url = url
        row.webhook_enabled = enabled and bool(url)
        row.save()
        audit_record(
            action="alerts.webhook_set", actor=actor, tenant=tenant, target=tenant.slug,
            detail={
                "enabled": row.webhook_enabled,
                "url_host": _url_host(url),
                "secret_changed": bool(secret or new_secret),
            },
        )
    return row, new_secret


def tenant_alert_settings_set(
    *, tenant_id: int, backup_max_age_hours: int | None, actor: Any = None
) -> TenantAlertSettings:
    if backup_max_age_hours is not None and not 1 <= backup_max_age_hours <= 24 * 90:
        raise QuotaError("the backup age must be between 1 hour and 90 days")
    with transaction.atomic():
        tenant = Tenant.objects.get(pk=tenant_id)
        row, _ = TenantAlertSettings.objects.get_or_create(tenant=tenant)
        row.backup_max_age_hours = backup_max_age_hours
        row.save(update_fields=["backup_max_age_hours", "updated_at"])
        audit_record(
            action="alerts.settings_set", actor=actor, tenant=tenant, target=tenant.slug,
            detail={"backup_max_age_hours": backup_max_age_hours},
        )
    return row


def _url_host(url: str) -> str:

    # Only the host is recorded: webhook URLs of ticketing tools often carry a token.
    return urlsplit(url).hostname or ""


def webhook_payload(*, alert: Alert, event: str, delivery_uuid: str, now: datetime) -> dict[str, Any]:
    tenant = alert.tenant
    return {
        "id": delivery_uuid,
        "event": event,
        "created_at": now.astimezone(UTC).isoformat(),
        "tenant": {"id": tenant.pk, "slug": tenant.slug, "name": tenant.name},
        "alert": {
            "id": alert.pk,
            "kind": alert.kind,
            "key": alert.key,
            "severity": alert.severity,
            "status": alert.status,
            "title": alert.title,
            "message": alert.message,
            "opened_at": alert.opened_at.astimezone(UTC).isoformat(),
            "resolved_at": alert.resolved_at.astimezone(UTC).isoformat() if alert.resolved_at else None,
            "detail": alert.detail,
        },
    }


def webhook_deliveries_create(*, alert: Alert, event: str, now: datetime | None = None) -> list[WebhookDelivery]:
    """One pending delivery per configured webhook (the tenant's and the global one)."""
    now = _now(now)
    targets: list[str] = []
    own = TenantAlertSettings.objects.filter(tenant_id=alert.tenant_id, webhook_enabled=True).exclude(
        webhook_url=""
    ).exists()
    if own:
        targets.append(WebhookDelivery.Target.TENANT)
    if getattr(settings, "PORTAL_WEBHOOK_URL", ""):
        targets.append(WebhookDelivery.Target.GLOBAL)
    deliveries = []
    for target in targets:
        delivery = WebhookDelivery(target=target, tenant_id=alert.tenant_id, alert=alert, event=event)
        payload = webhook_payload(alert=alert, event=event, delivery_uuid=str(delivery.uuid), now=now)
        delivery.body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        delivery.save()
        deliveries.append(delivery)
    return deliveries


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, "<timestamp>." + body)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_signature_verify(
    *, secret: str, timestamp: str, body: bytes, signature: str, now: float | None = None,
    tolerance_seconds: int = 300,
) -> bool:
    """The receiver's check (documented in docs/alerts.md; used by the tests)."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body)
    return hmac.compare_digest(expected, signature)


def _webhook_target(delivery: WebhookDelivery) -> tuple[str, str]:
    """(url, secret) for a delivery, read at send time so a rotated secret is used at once."""
    if delivery.target == WebhookDelivery.Target.GLOBAL:
        return settings.PORTAL_WEBHOOK_URL, settings.PORTAL_WEBHOOK_SECRET
    row = TenantAlertSettings.objects.filter(tenant_id=delivery.tenant_id).first()
    if row is None or not row.webhook_enabled or not row.webhook_url:
        return "", ""
    return row.webhook_url, decrypt_secret(row.webhook_secret_enc)


@dataclass(frozen=True)
class WebhookAttempt:
    status: str  # succeeded | retry | failed
    status_code: int | None = None
    error: str = ""


def _retryable_status(code: int) -> bool:
    return code >= 500 or code in {408, 425, 429}


def webhook_delivery_attempt(
    *, delivery_id: int, transport: Any = None, now: datetime | None = None, final: bool = False
) -> WebhookAttempt:
    """Send one delivery once and record the attempt.

    2xx = delivered. 5xx, 408, 425, 429 and connection errors may be retried; other 4xx mean
    the receiver refuses the message, so it fails at once. ``final`` marks the last allowed
    attempt: a retryable outcome then fails the delivery too.
    """
    import httpx

    now = _now(now)
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return WebhookAttempt(status=delivery.status if delivery else "failed", error="not pending")
    url, secret = _webhook_target(delivery)
    if not url or not secret:
        error = "webhook is not configured (URL or secret missing)"
        _delivery_record(delivery, now=now, status=WebhookDelivery.Status.FAILED, code=None, error=error)
        return WebhookAttempt(status="failed", error=error)

    body = delivery.body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "pbs-portal-webhook/1",
        "X-Portal-Event": delivery.event,
        "X-Portal-Delivery": str(delivery.uuid),
        "X-Portal-Timestamp": timestamp,
        "X-Portal-Signature": webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }
    timeout = float(getattr(settings, "PORTAL_WEBHOOK_TIMEOUT_SECONDS", 10))
    try:
        with httpx.Client(timeout=timeout, transport=transport, follow_redirects=False) as http:
            response = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        # The exception text can hold the URL; record the class and host only.
        error = f"{type(exc).__name__} talking to {_url_host(url)}"
        outcome = WebhookAttempt(status="retry", error=error)
    else:
        code = response.status_code
        if 200 <= code < 300:
            outcome = WebhookAttempt(status="succeeded", status_code=code)
        elif _retryable_status(code):
            outcome = WebhookAttempt(status="retry", status_code=code, error=f"HTTP {code}")
        else:
            outcome = WebhookAttempt(status="failed", status_code=code, error=f"HTTP {code} (not retried)")
    if outcome.status == "retry" and final:
        outcome = WebhookAttempt(status="failed", status_code=outcome.status_code, error=outcome.error + "; gave up")
    row_status = {
        "succeeded": WebhookDelivery.Status.SUCCEEDED,
        "failed": WebhookDelivery.Status.FAILED,
        "retry": WebhookDelivery.Status.PENDING,
    }[outcome.status]
    _delivery_record(delivery, now=now, status=row_status, code=outcome.status_code, error=outcome.error)
    return outcome


def _delivery_record(
    delivery: WebhookDelivery, *, now: datetime, status: str, code: int | None, error: str
) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
        attempts=F("attempts") + 1, last_attempt_at=now, last_status_code=code,
        last_error=error[:1000], status=status,
        delivered_at=now if status == WebhookDelivery.Status.SUCCEEDED else None,
        next_attempt_at=None,
    )


def webhook_delivery_schedule(*, delivery_id: int, at: datetime) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING).update(next_attempt_at=at)


def webhook_deliveries_requeue_stale(
    *, now: datetime | None = None, stale_after: timedelta = timedelta(hours=2)
) -> int:
    """Re-enqueue pending deliveries whose task was lost (no attempt for a long time)."""
    from alerts import tasks  # tasks import this module: a real cycle, resolved at call time

    now = _now(now)
    cutoff = now - stale_after
    stale = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lt=cutoff).exclude(
        next_attempt_at__gt=cutoff
    ).exclude(last_attempt_at__gt=cutoff)
    ids = list(stale.values_list("pk", flat=True)[:500])
    for delivery_id in ids:
        tasks.webhook_deliver.delay(delivery_id)
    return len(ids)


# --------------------------------------------------------------------------- backup health


def _epoch(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def backup_age_evaluate(
    *, tenant: Tenant, newest_backup_at: datetime | None, now: datetime | None = None
) -> Alert | None:
    """Raise or resolve the "no recent backup" alert from the newest snapshot time. A tenant
    without any backup is measured from its activation."""
    now = _now(now)
    max_age = timedelta(hours=selectors.backup_max_age_hours(tenant))
    reference = newest_backup_at or tenant.activated_at or tenant.created_at
    if reference is not None and now - reference > max_age:
        hours = int((now - reference).total_seconds() // 3600)
        if newest_backup_at is None:
            title = "No backup received yet"
            message = f"No backup has arrived in the {hours} hours since the tenant was activated."
        else:
            title = f"No new backup for {hours} hours"
            message = (
                f"The newest backup is from {newest_backup_at:%Y-%m-%d %H:%M} UTC; "
                f"backups are expected at least every {int(max_age.total_seconds() // 3600)} hours."
            )
        return alert_raise(
            tenant=tenant, kind=Alert.Kind.BACKUP_STALE, title=title, message=message,
            severity=Alert.Severity.WARNING, now=now,
            detail={"newest_backup_at": newest_backup_at.isoformat() if newest_backup_at else None},
        )
    return alert_resolve(tenant=tenant, kind=Alert.Kind.BACKUP_STALE, now=now)


def verification_failures_evaluate(
    *, tenant: Tenant, failed_groups: dict[str, datetime], now: datetime | None = None
) -> None:
    """Raise one alert per group whose newest verified snapshot failed; resolve the rest."""
    now = _now(now)
    for key, snapshot_time in sorted(failed_groups.items()):
        alert_raise(
            tenant=tenant, kind=Alert.Kind.VERIFY_FAILED, key=key[:128],
            title=f"Verification failed for {key}",
            message=(
                f"The newest verified snapshot of {key} ({snapshot_time:%Y-%m-%d %H:%M} UTC) "
                "failed verification: its data may be damaged. Check the datastore and run a "
                "new backup."
            ),
            severity=Alert.Severity.CRITICAL, now=now,
            detail={"group": key, "snapshot_time": snapshot_time.isoformat()},
        )
    alert_resolve_all_except(tenant=tenant, kind=Alert.Kind.VERIFY_FAILED, keep_keys=set(failed_groups), now=now)


def _tenant_namespaces(client: Any, tenant: Tenant) -> list[str]:
    """The tenant's namespace and those below it."""

    store = tenant.datastore.name
    try:
        listed = [ns.ns for ns in client.namespace_list(store, parent=tenant.namespace)]
    except NotFound:
        return []
    names = {tenant.namespace, *listed}
    return sorted(name for name in names if name == tenant.namespace or name.startswith(tenant.namespace + "/"))


def _group_key(tenant: Tenant, ns: str, backup_type: str, backup_id: str) -> str:
    below = ns[len(tenant.namespace) :].strip("/")
    return f"{below}:{backup_type}/{backup_id}" if below else f"{backup_type}/{backup_id}"


def backup_age_from_metering(*, tenant_id: int, now: datetime | None = None) -> Alert | None:
    """Evaluate "no recent backup" from the newest metering sample, unless the hourly check
    has looked at PBS since that sample was taken."""
    now = _now(now)
    tenant = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.ACTIVE).first()
    if tenant is None:
        return None
    figure = selectors.usage_latest_for_tenant(tenant_id=tenant_id, metric=selectors.DEFAULT_METRIC)
    if figure is None:
        return None
    with transaction.atomic():
        health, _ = BackupHealth.objects.select_for_update().get_or_create(tenant=tenant)
        if health.checked_at is not None and health.checked_at >= figure.taken_at:
            return None
        BackupHealth.objects.filter(pk=health.pk).update(
            newest_backup_at=figure.newest_backup_at, checked_at=figure.taken_at
        )
        return backup_age_evaluate(tenant=tenant, newest_backup_at=figure.newest_backup_at, now=now)


def tenant_backup_health_check(
    *, tenant: Tenant, client: Any, now: datetime | None = None, check_verification: bool | None = None
) -> BackupHealth:
    """Check one tenant: newest backup time from group_list (cheap), and every few hours the
    newest verification state per group from snapshot_list."""
    now = _now(now)
    health, _ = BackupHealth.objects.get_or_create(tenant=tenant)
    if check_verification is None:
        check_verification = health.verify_checked_at is None or now - health.verify_checked_at >= VERIFY_CHECK_INTERVAL
    store = tenant.datastore.name
    newest: datetime | None = None
    group_count = 0
    failed: dict[str, datetime] = {}
    for ns in _tenant_namespaces(client, tenant):
        for group in client.group_list(store, ns=ns):
            group_count += 1
            last = _epoch(group.last_backup)
            if last is not None and (newest is None or last > newest):
                newest = last
        if check_verification:
            latest_verified: dict[str, tuple[int, str]] = {}
            for snap in client.snapshot_list(store, ns=ns):
                if not snap.verification_state:
                    continue
                key = _group_key(tenant, ns, snap.backup_type, snap.backup_id)
                seen = latest_verified.get(key)
                if seen is None or snap.backup_time > seen[0]:
                    latest_verified[key] = (snap.backup_time, snap.verification_state)
            for key, (when, verify_state) in latest_verified.items():
                if verify_state == "failed":
                    failed[key] = datetime.fromtimestamp(when, tz=UTC)
    with transaction.atomic():
        backup_age_evaluate(tenant=tenant, newest_backup_at=newest, now=now)
        fields: dict[str, Any] = {
            "newest_backup_at": newest, "group_count": group_count, "checked_at": now, "last_error": "",
        }
        if check_verification:
            verification_failures_evaluate(tenant=tenant, failed_groups=failed, now=now)
            fields["failed_verifications"] = sorted(failed)
            fields["verify_checked_at"] = now
        BackupHealth.objects.filter(pk=health.pk).update(**fields)
    health.refresh_from_db()
    return health


def offsite_key(policy_id: int) -> str:
    """The alert key of one offsite policy's copy of a tenant."""
    return f"policy-{policy_id}"


def offsite_stale_alert_sync(*, membership: TenantOffsite, now: datetime | None = None) -> bool:
    """The one rule for a tenant's ``offsite_stale`` alert of one policy: open (or keep) it while
    the copy is stale, resolve it once it caught up. Called for each membership offsite's status
    refresh just re-computed (through ``offsite_staleness_refreshed``) and by the hourly sweep.
    Returns whether the copy is stale."""
    key = offsite_key(membership.policy_id)
    if not membership.stale or membership.tenant.status != Tenant.Status.ACTIVE:
        alert_resolve(tenant=membership.tenant, kind=Alert.Kind.OFFSITE_STALE, key=key, now=now)
        return False
    alert_raise(
        tenant=membership.tenant, kind=Alert.Kind.OFFSITE_STALE, key=key,
        title="Offsite copy is behind",
        message=membership.stale_reason or "The offsite copy is older than the policy allows.",
        severity=Alert.Severity.WARNING, now=now,
        detail={
            "policy_id": membership.policy_id,
            "source_newest_at": membership.source_newest_at.isoformat() if membership.source_newest_at else None,
            "target_newest_at": membership.target_newest_at.isoformat() if membership.target_newest_at else None,
        },
    )  # fmt: skip
    return True


def offsite_staleness_alerts_sync(*, now: datetime | None = None) -> int:
    """Hourly sweep: the alert of every offsite membership follows its stale flag (set by
    offsite's status refresh), and alerts of memberships that no longer exist are resolved.
    Returns the number of stale copies."""
    now = _now(now)
    kept: dict[int, set[str]] = {}
    stale = 0
    for membership in TenantOffsite.objects.select_related("tenant", "policy"):
        if offsite_stale_alert_sync(membership=membership, now=now):
            stale += 1
            kept.setdefault(membership.tenant_id, set()).add(offsite_key(membership.policy_id))
    orphans = Alert.objects.filter(kind=Alert.Kind.OFFSITE_STALE, status=Alert.Status.OPEN).select_related("tenant")
    for alert in orphans:
        if alert.key not in kept.get(alert.tenant_id, set()):
            alert_resolve(tenant=alert.tenant, kind=alert.kind, key=alert.key, now=now)
    return stale


def host_backup_health_check(*, host_id: int, client: Any = None, now: datetime | None = None) -> int:
    """One pass over a host's active tenants with one client. Returns tenants checked; a
    tenant whose check fails is recorded and the pass goes on."""
    from tenants.models import PbsHost

    now = _now(now)
    host = PbsHost.objects.filter(pk=host_id, enabled=True).first()
    if host is None:
        return 0
    tenants = list(
        Tenant.objects.filter(host=host, status=Tenant.Status.ACTIVE)
        .exclude(namespace="")
        .exclude(datastore__isnull=True)
        .select_related("datastore")
        .order_by("slug")
    )
    if not tenants:
        return 0
    own_client = client is None
    if own_client:
        from tenants.pbs import client_for_host

        client = client_for_host(host, purpose="metering")
    checked = 0
    try:
        for tenant in tenants:
            try:
                tenant_backup_health_check(tenant=tenant, client=client, now=now)
                checked += 1
            except PbsConnectionError:
                # The host is down: the host health check reports that, not N tenant alerts.
                raise
            except PbsError as exc:
                logger.warning("backup health check of %s failed: %s", tenant.slug, exc)
                BackupHealth.objects.update_or_create(
                    tenant=tenant, defaults={"last_error": f"{type(exc).__name__}: {exc}"[:2000]}
                )
    finally:
        if own_client:
            client.close()
    return checked
