"""Writes for tenants and PBS hosts.

Every service takes keyword-only arguments, validates before it writes, and records staff
actions and PBS mutations in the audit trail in the same transaction as their effect.
Secrets are encrypted at rest (core.crypto) and never logged, audited or enqueued.

The database holds the desired state; PBS is converged to it (tenants.onboarding). A
lifecycle action first commits the new desired state with its audit row, then converges
PBS; if PBS fails part-way, the error says so and a retry (or a drift repair) finishes it.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.permissions import can_view_tenant
from audit.services import audit_record
from core.crypto import decrypt_secret, encrypt_secret
from core.signals import send_logged
from pbsclient import validation
from pbsclient.errors import AlreadyExists, NotFound, PbsError, PbsHttpError
from tenants import drift
from tenants.hints import hint_for
from tenants.models import (
    AclGrant,
    Datastore,
    OnboardingRun,
    OnboardingStep,
    PbsHost,
    Tenant,
    TenantToken,
)
from tenants.naming import restore_name_problems, slug_problems, stored_names, tenant_names
from tenants.onboarding import (
    LIVE_STATUSES,
    ROLE_RESTORE_TOKEN,
    context_for,
    converge_acl,
    desired_roles,
    step_backup_token,
    step_prune_job,
    step_token_acl,
    step_user_acl,
    steps_for,
    token_renew_secret,
    verify_access,
)
from tenants.pbs import client_for_host, client_for_values
from tenants.pbsstate import LiveState, PbsState, SnapshotState
from tenants.restore import restore_privilege_problems, restore_token_effective_privileges
from tenants.selectors import placement_choose
from tenants.signals import host_drift_checking, host_repair_requested

log = logging.getLogger(__name__)

KEEP_FIELDS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
REGENERATE_SINCE = (3, 3, 7)


class LifecycleError(Exception):
    """A lifecycle action could not be completed on PBS; ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class TokenAlreadyRevealed(Exception):
    """The secret was revealed once already (and destroyed)."""

    def __init__(self, token: TenantToken) -> None:
        who = token.revealed_by.get_username() if token.revealed_by else "the command line"
        when = f"{token.revealed_at:%Y-%m-%d %H:%M} UTC" if token.revealed_at else "earlier"
        super().__init__(f"This secret was already revealed by {who} at {when}; rotate the token for a new one.")
        self.token = token


def _actor(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _lifecycle_error(exc: PbsError, *, host: PbsHost, step: str = "", store: str = "") -> LifecycleError:
    return LifecycleError(str(exc), hint_for(exc, host=host, step=step, store=store))


# --- PBS hosts ---------------------------------------------------------------------------


def _validate_host_values(
    *, name: str, url: str, token_id: str, fingerprint: str, ca_pem: str, metering_token_id: str
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        errors.setdefault("name", []).append("Use letters, digits, '-' and '_'.")
    if not url.startswith("https://"):
        errors.setdefault("url", []).append("PBS is reached over HTTPS: https://host:8007")
    for field_name, value in (("token_id", token_id), ("metering_token_id", metering_token_id)):
        if value:
            try:
                validation.validate_tokenid(value)
            except ValueError as exc:
                errors.setdefault(field_name, []).append(str(exc))
    if fingerprint:
        try:
            validation.validate_fingerprint(fingerprint)
        except ValueError as exc:
            errors.setdefault("fingerprint", []).append(str(exc))
    elif not ca_pem:
        errors.setdefault("fingerprint", []).append(
            "Pin the certificate's SHA-256 fingerprint (PBS dashboard > Show Fingerprint, or "
            "'proxmox-backup-manager cert info'), or give the CA that signed it."
        )
    return errors


def pbshost_register(
    *,
    name: str,
    url: str,
    token_id: str,
    token_secret: str,
    actor: Any = None,
    fingerprint: str = "",
    ca_pem: str = "",
    metering_token_id: str = "",
    metering_secret: str = "",
    public_address: str = "",
    check: bool = True,
) -> PbsHost:
    """Register a PBS host.

    1. Validate names, URL, token ids and the fingerprint format.
    2. With ``check``: connect with the pin and the automation token (and the metering
       token, if any) before anything is saved, so a typo never becomes a host.
    3. Save the host with its secrets encrypted, audit it, then run a health check
       (version, capacity, datastores, the automation token's privileges).
    """
    url = url.strip().rstrip("/")
    fingerprint = fingerprint.strip().lower()
    errors = _validate_host_values(
        name=name, url=url, token_id=token_id, fingerprint=fingerprint, ca_pem=ca_pem,
        metering_token_id=metering_token_id,
    )  # fmt: skip
    if not token_secret:
        errors.setdefault("token_secret", []).append("The automation token's secret is required.")
    if metering_token_id and not metering_secret:
        errors.setdefault("metering_secret", []).append("The metering token's secret is required.")
    if PbsHost.objects.filter(name=name).exists():
        errors.setdefault("name", []).append(f"A host named '{name}' exists.")
    if errors:
        raise ValidationError(errors)
    if check:
        pairs = [(token_id, token_secret)]
        if metering_token_id:
            pairs.append((metering_token_id, metering_secret))
        for tid, secret in pairs:
            with client_for_values(
                url=url, token_id=tid, token_secret=secret, fingerprint=fingerprint, ca_pem=ca_pem,
                name=name,
            ) as client:  # fmt: skip
                try:
                    client.datastore_list()
                except PbsError as exc:
                    probe = PbsHost(name=name, url=url, token_id=tid)
                    raise LifecycleError(f"Cannot use {tid} on {url}: {exc}", hint_for(exc, host=probe)) from exc
    with transaction.atomic():
        host = PbsHost.objects.create(
            name=name,
            url=url,
            fingerprint=fingerprint,
            ca_pem=ca_pem,
            public_address=public_address.strip(),
            token_id=token_id,
            token_secret_enc=encrypt_secret(token_secret),
            metering_token_id=metering_token_id,
            metering_secret_enc=encrypt_secret(metering_secret),
        )
        audit_record(
            action="host.register", actor=actor, target=name,
            detail={"url": url, "token_id": token_id, "metering_token_id": metering_token_id,
                    "pinned": bool(fingerprint)},
        )  # fmt: skip
    if check:
        pbshost_check(host_id=host.pk, actor=actor, enable_new_datastores=True)
        host.refresh_from_db()
    return host


def pbshost_update(
    *,
    host_id: int,
    actor: Any = None,
    fingerprint: str | None = None,
    token_id: str | None = None,
    token_secret: str | None = None,
    metering_token_id: str | None = None,
    metering_secret: str | None = None,
    enabled: bool | None = None,
    public_address: str | None = None,
) -> PbsHost:
    """Change a host's pin, token, secrets or switches (after a certificate renewal, or to
    rotate the automation token). The caller runs a health check afterwards."""
    changed: list[str] = []
    with transaction.atomic():
        host = PbsHost.objects.select_for_update().get(pk=host_id)
        if fingerprint is not None:
            try:
                host.fingerprint = validation.validate_fingerprint(fingerprint) if fingerprint else ""
            except ValueError as exc:
                raise ValidationError({"fingerprint": [str(exc)]}) from exc
            host.fingerprint_ok = None
            changed.append("fingerprint")
        if token_id is not None:
            try:
                host.token_id = validation.validate_tokenid(token_id)
            except ValueError as exc:
                raise ValidationError({"token_id": [str(exc)]}) from exc
            changed.append("token_id")
        if token_secret:
            host.token_secret_enc = encrypt_secret(token_secret)
            changed.append("token_secret")
        if metering_token_id is not None:
            host.metering_token_id = metering_token_id
            changed.append("metering_token_id")
        if metering_secret is not None:
            host.metering_secret_enc = encrypt_secret(metering_secret)
            changed.append("metering_secret")
        if enabled is not None:
            host.enabled = enabled
            changed.append("enabled")
        if public_address is not None:
            host.public_address = public_address.strip()
            changed.append("public_address")
        host.save()
        # Field names only: the audit row never carries a secret.
        audit_record(action="host.update", actor=actor, target=host.name, detail={"changed": changed})
    return host


def _supports_regenerate(version: tuple[int, ...]) -> bool:
    return tuple(version[:3]) >= REGENERATE_SINCE


REQUIRED_PRIVILEGES = (
    ("/access/users", ("Permissions.Modify", "Sys.Audit")),
    ("/access/acl", ("Permissions.Modify",)),
)
REQUIRED_DATASTORE_PRIVILEGES = ("Datastore.Modify", "Datastore.Audit")


def pbshost_check(*, host_id: int, actor: Any = None, enable_new_datastores: bool = False) -> PbsHost:
    """Health check of one host.

    1. Version (reachable; the pinned fingerprint still matches, else the client refuses
       before sending anything); regenerate support from the version (>= 3.3.7).
    2. Datastores: list, status figures (total/used/avail) and GC figures; new ones are
       added (disabled for placement unless ``enable_new_datastores``).
    3. The automation token's own privileges on /access and each datastore, so missing
       grants show up before an onboarding fails on them.
    """
    host = PbsHost.objects.get(pk=host_id)
    now = timezone.now()
    updates: dict[str, Any] = {"last_check_at": now}
    warnings: list[str] = []
    try:
        with client_for_host(host) as client:
            version = client.version()
            updates.update(
                reachable=True,
                fingerprint_ok=True if host.fingerprint else None,
                pbs_version=f"{version.version}.{version.release}".strip("."),
                supports_regenerate=_supports_regenerate(version.version_tuple),
                last_error="",
            )
            stores = client.datastore_list()
            seen = set()
            known = {ds.name: ds for ds in Datastore.objects.filter(host=host)}
            for item in stores:
                seen.add(item.store)
                status = client.datastore_status(item.store)
                values: dict[str, Any] = {
                    "total_bytes": status.total,
                    "used_bytes": status.used,
                    "avail_bytes": status.avail,
                    "last_seen_at": now,
                }
                try:
                    gc = client.gc_status(item.store)
                except PbsHttpError:
                    gc = None
                if gc is not None:
                    values.update(gc_index_data_bytes=gc.index_data_bytes, gc_disk_bytes=gc.disk_bytes)
                if item.store in known:
                    Datastore.objects.filter(pk=known[item.store].pk).update(**values)
                else:
                    Datastore.objects.create(host=host, name=item.store, enabled=enable_new_datastores, **values)
                    audit_record(
                        action="host.datastore.discovered", actor=actor, target=f"{host.name}/{item.store}",
                        detail={"enabled": enable_new_datastores},
                    )  # fmt: skip
            unseen = sorted(set(known) - seen)
            # Capacity unknown = out of automatic placement until PBS lists it again.
            Datastore.objects.filter(host=host, name__in=unseen).update(avail_bytes=None)
            for name in unseen:
                warnings.append(
                    f"datastore '{name}' is not listed by PBS: it was removed, or the automation "
                    f"token cannot see it (Datastore.Audit on /datastore/{name})"
                )
            for path, needed in REQUIRED_PRIVILEGES:
                have = client.permissions_get(path=path).get(path, {})
                missing = [p for p in needed if p not in have]
                if missing:
                    warnings.append(
                        f"the automation token lacks {', '.join(missing)} on {path}: grant Admin on "
                        f"/access to {host.token_id} (and to its user)"
                    )
            for name in sorted(seen | {n for n, ds in known.items() if ds.enabled}):
                path = f"/datastore/{name}"
                have = client.permissions_get(path=path).get(path, {})
                missing = [p for p in REQUIRED_DATASTORE_PRIVILEGES if p not in have]
                if missing:
                    warnings.append(
                        f"the automation token lacks {', '.join(missing)} on {path}: grant "
                        f"DatastoreAdmin on {path} to {host.token_id} (and to its user)"
                    )
    except PbsError as exc:
        from pbsclient.errors import FingerprintMismatch, PbsConnectionError

        updates["last_error"] = f"{exc}\n{hint_for(exc, host=host)}".strip()
        if isinstance(exc, FingerprintMismatch):
            updates.update(reachable=True, fingerprint_ok=False)
        elif isinstance(exc, PbsConnectionError):
            updates["reachable"] = False
        else:
            updates["reachable"] = True
    updates["permission_warnings"] = warnings
    with transaction.atomic():
        PbsHost.objects.filter(pk=host.pk).update(**updates)
        result = "ok" if not updates.get("last_error") else "failed"
        audit_record(
            action="host.check", actor=actor, target=host.name, result=result,
            detail={"reachable": updates.get("reachable"), "fingerprint_ok": updates.get("fingerprint_ok"),
                    "version": updates.get("pbs_version", ""), "warnings": len(warnings)},
        )  # fmt: skip
    host.refresh_from_db()
    return host


def datastore_update(
    *, datastore_id: int, actor: Any = None, enabled: bool | None = None, placement_weight: int | None = None
) -> Datastore:
    with transaction.atomic():
        store = Datastore.objects.select_for_update(of=("self",)).select_related("host").get(pk=datastore_id)
        if enabled is not None:
            store.enabled = enabled
        if placement_weight is not None:
            if not 0 <= placement_weight <= 1000:
                raise ValidationError({"placement_weight": ["Use 0..1000 (0 = never place here)."]})
            store.placement_weight = placement_weight
        store.save(update_fields=["enabled", "placement_weight"])
        audit_record(
            action="host.datastore.update", actor=actor, target=str(store),
            detail={"enabled": store.enabled, "placement_weight": store.placement_weight},
        )  # fmt: skip
    return store


# --- tenants ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    """A tenant's retention: keep-* (None = not limited by it) and the prune schedule."""

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = 14
    keep_weekly: int | None = 8
    keep_monthly: int | None = 12
    keep_yearly: int | None = None
    schedule: str = "daily"

    def as_fields(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in KEEP_FIELDS}, "schedule": self.schedule}

    @classmethod
    def of(cls, tenant: Tenant) -> Retention:
        return cls(**{name: getattr(tenant, name) for name in KEEP_FIELDS}, schedule=tenant.schedule)


def retention_problems(retention: Retention) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in KEEP_FIELDS:
        value = getattr(retention, name)
        if value is not None and not 1 <= value <= 32767:
            errors[name] = ["Use a number from 1 up, or leave it empty (not limited by it)."]
    try:
        validation.validate_calendar_event(retention.schedule)
    except ValueError as exc:
        errors["schedule"] = [str(exc)]
    return errors


def tenant_validate(
    *, slug: str, name: str = "", datastore: Datastore | None = None, check_unique: bool = True
) -> dict[str, list[str]]:
    """Field errors for a new tenant (used by the form as you type, the API and the CLI)."""
    errors: dict[str, list[str]] = {}
    problems = slug_problems(slug, store=datastore.name if datastore else None)
    if not problems and check_unique and Tenant.objects.filter(slug=slug).exists():
        problems.append(f"The slug '{slug}' is taken.")
    if problems:
        errors["slug"] = problems
    if name is not None and not name.strip():
        errors["name"] = ["Enter the customer's name."]
    return errors


def tenant_create(
    *,
    slug: str,
    name: str,
    actor: Any = None,
    contact_name: str = "",
    contact_email: str = "",
    plan: Any = None,
    host: PbsHost | None = None,
    datastore: Datastore | None = None,
    retention: Retention | None = None,
    max_restore_token_days: int | None = None,
) -> Tenant:
    """Create a tenant (status pending) with its placement and derived PBS names.

    Placement: the given datastore; or the best datastore of the given host; or the best
    datastore anywhere (placement policy in tenants.selectors.placement_candidates).
    """
    slug = slug.strip()
    retention = retention or Retention()
    if datastore is not None and host is not None and datastore.host_id != host.pk:
        raise ValidationError({"datastore": [f"{datastore} is not on host {host.name}."]})
    if datastore is None:
        datastore = placement_choose(host=host)
        if datastore is None:
            where = f"on {host.name}" if host else "on any host"
            raise ValidationError(
                {"datastore": [f"No usable datastore {where}: hosts must be enabled and reachable, "
                               "datastores enabled with known capacity (run a health check)."]}
            )  # fmt: skip
    errors = tenant_validate(slug=slug, name=name, datastore=datastore)
    errors.update(retention_problems(retention))
    days = max_restore_token_days or settings.PORTAL_MAX_RESTORE_TOKEN_DAYS
    if not 1 <= days <= settings.PORTAL_MAX_RESTORE_TOKEN_DAYS:
        errors["max_restore_token_days"] = [f"Use 1..{settings.PORTAL_MAX_RESTORE_TOKEN_DAYS}."]
    if errors:
        raise ValidationError(errors)
    names = tenant_names(slug)
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(
                slug=slug,
                name=name.strip(),
                contact_name=contact_name.strip(),
                contact_email=contact_email.strip(),
                plan=plan,
                host=datastore.host,
                datastore=datastore,
                namespace=names.namespace,
                pbs_userid=names.userid,
                prune_job_id=names.prune_job_id,
                max_restore_token_days=days,
                created_by=_actor(actor),
                **retention.as_fields(),
            )
            audit_record(
                action="tenant.create", actor=actor, tenant=tenant, target=slug,
                detail={"host": datastore.host.name, "datastore": datastore.name,
                        "namespace": names.namespace, "plan": getattr(plan, "name", None)},
            )  # fmt: skip
    except IntegrityError as exc:
        raise ValidationError({"slug": [f"The slug '{slug}' is taken."]}) from exc
    return tenant


def tenant_update(
    *,
    tenant_id: int,
    actor: Any = None,
    name: str | None = None,
    contact_name: str | None = None,
    contact_email: str | None = None,
    plan: Any = None,
    set_plan: bool = False,
) -> Tenant:
    """Portal-only details (nothing on PBS changes)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        changed = []
        for field_name, value in (("name", name), ("contact_name", contact_name), ("contact_email", contact_email)):
            if value is not None and getattr(tenant, field_name) != value.strip():
                setattr(tenant, field_name, value.strip())
                changed.append(field_name)
        if set_plan and tenant.plan_id != getattr(plan, "pk", None):
            tenant.plan = plan
            changed.append("plan")
        if not tenant.name:
            raise ValidationError({"name": ["Enter the customer's name."]})
        tenant.save()
        audit_record(action="tenant.update", actor=actor, tenant=tenant, target=tenant.slug,
                     detail={"changed": changed})  # fmt: skip
    return tenant


# --- onboarding runs ----------------------------------------------------------------------------

ALLOWED_KIND_STATUSES = {
    OnboardingRun.Kind.ONBOARD: (Tenant.Status.PENDING, Tenant.Status.FAILED, Tenant.Status.ONBOARDING),
    OnboardingRun.Kind.REPAIR: (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.FAILED),
    OnboardingRun.Kind.OFFBOARD: (
        Tenant.Status.PENDING, Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED, Tenant.Status.FAILED,
        Tenant.Status.OFFBOARDING,
    ),
}  # fmt: skip


def _enqueue_run(run_id: int, task_id: str) -> None:
    from tenants.tasks import onboarding_run_execute

    onboarding_run_execute.apply_async(args=[run_id], task_id=task_id)


def _enqueue_batch(run_ids: list[int], task_id: str) -> None:
    from tenants.tasks import onboarding_batch_execute

    onboarding_batch_execute.apply_async(args=[run_ids], task_id=task_id)


def _run_is_stale(run: OnboardingRun) -> bool:
    """A live run nobody works on (its task was lost): re-enqueueing it is safe (lease)."""
    now = timezone.now()
    unclaimed = run.claimed_until is None or run.claimed_until < now
    since = max(t for t in (run.created_at, run.started_at, run.next_attempt_at) if t is not None)
    return unclaimed and now - since > timedelta(seconds=settings.PORTAL_ONBOARDING_STALE_SECONDS)


def onboarding_runs_expect(*, run_ids: list[int], in_seconds: float) -> None:
    """Record that a task for these runs is scheduled (a retry's countdown), so the stale-run
    recovery leaves them alone until then."""
    due = timezone.now() + timedelta(seconds=in_seconds)
    OnboardingRun.objects.filter(pk__in=run_ids, status__in=LIVE_STATUSES).update(next_attempt_at=due)


def onboarding_runs_recover(*, limit: int = 2000) -> list[int]:
    """Enqueue again the live runs whose task was lost (beat, every minute); returns their ids.

    A task can vanish without a trace: a worker killed mid-run (Redis hands an unacked
    message out again only after the visibility timeout, an hour), a broker restarted
    without persistence, a database outage that made the task itself fail. Its run then
    stays queued or running with nobody holding the lease. Runs that are unclaimed and
    stale (``_run_is_stale``) are enqueued in batches per host, like a bulk onboarding; a
    duplicate delivery is harmless (the lease, then the run is found finished).
    """
    now = timezone.now()
    candidates = (
        OnboardingRun.objects.filter(status__in=LIVE_STATUSES)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .select_related("tenant")
        .order_by("pk")[:limit]
    )
    by_host: dict[int | None, list[int]] = {}
    for run in candidates:
        if _run_is_stale(run):
            by_host.setdefault(run.tenant.host_id, []).append(run.pk)
    size = max(1, settings.PORTAL_ONBOARDING_BATCH_SIZE)
    recovered: list[int] = []
    with transaction.atomic():
        for ids in by_host.values():
            for batch in (ids[i : i + size] for i in range(0, len(ids), size)):
                task_id = str(uuid.uuid4())
                OnboardingRun.objects.filter(pk__in=batch).update(celery_task_id=task_id, next_attempt_at=now)
                transaction.on_commit(lambda batch=batch, task_id=task_id: _enqueue_batch(batch, task_id))
                recovered += batch
    if recovered:
        log.warning("re-enqueued %d onboarding run(s) whose task was lost: %s", len(recovered), recovered[:20])
    return recovered


def tenant_onboard(
    *,
    tenant_id: int,
    actor: Any = None,
    kind: str = OnboardingRun.Kind.ONBOARD,
    options: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> tuple[OnboardingRun, bool]:
    """Start a run (onboard, repair or offboard) for a tenant, or return its live run.

    At most one live run per tenant (a partial unique constraint): a second submit, even
    a concurrent one, gets the live run back (created=False). The task is enqueued after
    the transaction commits, so a worker never looks for a run that is not there yet.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        live = OnboardingRun.objects.filter(tenant=tenant, status__in=LIVE_STATUSES).first()
        if live is not None:
            if enqueue and _run_is_stale(live):
                transaction.on_commit(lambda: _enqueue_run(live.pk, str(uuid.uuid4())))
            return live, False
        if tenant.status not in ALLOWED_KIND_STATUSES[kind]:
            raise ValidationError(f"A {kind} run is not possible while the tenant is {tenant.status}.")
        task_id = str(uuid.uuid4())
        try:
            with transaction.atomic():
                run = OnboardingRun.objects.create(
                    tenant=tenant, kind=kind, created_by=_actor(actor), celery_task_id=task_id,
                    options=options or {},
                )  # fmt: skip
        except IntegrityError:
            # Another transaction created the live run between our check and insert.
            return OnboardingRun.objects.get(tenant=tenant, status__in=LIVE_STATUSES), False
        OnboardingStep.objects.bulk_create(
            OnboardingStep(run=run, position=i, name=name) for i, name in enumerate(steps_for(kind))
        )
        if kind == OnboardingRun.Kind.OFFBOARD and tenant.status != Tenant.Status.OFFBOARDING:
            Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.OFFBOARDING)
        audit_record(
            action=f"tenant.{kind}.requested", actor=actor, tenant=tenant, target=tenant.slug,
            detail={"run": run.pk, **(options or {})},
        )  # fmt: skip
        if enqueue:
            transaction.on_commit(lambda: _enqueue_run(run.pk, task_id))
    return run, True


def tenant_onboard_bulk(*, tenant_ids: Iterable[int], actor: Any = None, enqueue: bool = True) -> list[OnboardingRun]:
    """Onboard many tenants: one run each, executed in batches per host that share one
    snapshot of the host's lists (PORTAL_ONBOARDING_BATCH_SIZE runs per task)."""
    runs: list[OnboardingRun] = []
    new_by_host: dict[int | None, list[int]] = {}
    with transaction.atomic():
        for tenant_id in tenant_ids:
            run, created = tenant_onboard(tenant_id=tenant_id, actor=actor, enqueue=False)
            runs.append(run)
            if created:
                new_by_host.setdefault(run.tenant.host_id, []).append(run.pk)
        size = max(1, settings.PORTAL_ONBOARDING_BATCH_SIZE)
        batches = [ids[i : i + size] for ids in new_by_host.values() for i in range(0, len(ids), size)]
        for batch in batches:
            task_id = str(uuid.uuid4())
            OnboardingRun.objects.filter(pk__in=batch).update(celery_task_id=task_id)
            if enqueue:
                transaction.on_commit(lambda batch=batch, task_id=task_id: _enqueue_batch(batch, task_id))
    return runs


def tenant_repair(*, tenant_id: int, actor: Any = None, enqueue: bool = True) -> tuple[OnboardingRun, bool]:
    """One-click drift repair: re-run the idempotent convergence for the tenant."""
    return tenant_onboard(tenant_id=tenant_id, actor=actor, kind=OnboardingRun.Kind.REPAIR, enqueue=enqueue)


def tenant_offboard(
    *,
    tenant_id: int,
    actor: Any = None,
    confirm_slug: str,
    delete_data: bool = False,
    enqueue: bool = True,
) -> tuple[OnboardingRun, bool]:
    """Offboard after a typed confirmation of the slug: revoke tokens, remove the user's
    own ACLs, delete the user and the prune job, delete the namespace only if asked."""
    tenant = Tenant.objects.get(pk=tenant_id)
    if confirm_slug.strip() != tenant.slug:
        raise ValidationError({"confirm_slug": [f"Type '{tenant.slug}' to confirm."]})
    return tenant_onboard(
        tenant_id=tenant_id, actor=actor, kind=OnboardingRun.Kind.OFFBOARD,
        options={"delete_data": bool(delete_data)}, enqueue=enqueue,
    )  # fmt: skip


# --- lifecycle -----------------------------------------------------------------------------------


def _lock_onboarded_tenant(tenant_id: int, *, allowed: tuple[str, ...]) -> Tenant:
    tenant = Tenant.objects.select_for_update(of=("self",)).select_related("host", "datastore").get(pk=tenant_id)
    if tenant.status not in allowed:
        raise ValidationError(f"Not possible while the tenant is {tenant.status}.")
    if OnboardingRun.objects.filter(tenant=tenant, status__in=LIVE_STATUSES).exists():
        raise ValidationError("A run for this tenant is in progress; wait until it has finished.")
    return tenant


def _converge_access(tenant: Tenant, *, actor: Any, step: str) -> list[str]:
    """Bring ACLs and the backup token's enable flag in line with the tenant's status, then
    verify the effective privileges. Returns problems found by the verification."""
    if tenant.host is None:
        raise ValidationError("The tenant has no PBS host.")
    try:
        with client_for_host(tenant.host) as client:
            ctx = context_for(tenant, client, actor=actor)
            step_user_acl(ctx)
            step_backup_token(ctx)
            step_token_acl(ctx)
            return verify_access(ctx)
    except PbsError as exc:
        audit_record(action=f"tenant.{step}", actor=actor, tenant=tenant, target=tenant.slug,
                     result="failed", detail={"error": str(exc)[:500]})  # fmt: skip
        store = tenant.datastore.name if tenant.datastore else ""
        raise _lifecycle_error(exc, host=tenant.host, step="user_acl", store=store) from exc


def tenant_suspend(*, tenant_id: int, actor: Any = None, reason: str = "") -> Tenant:
    """Stop writes, keep data and restores: the user loses DatastorePowerUser and the backup
    token DatastoreBackup (and is disabled); DatastoreReader stays. Verified afterwards."""
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.ACTIVE,))
        tenant.status = Tenant.Status.SUSPENDED
        tenant.suspended_at = timezone.now()
        tenant.save(update_fields=["status", "suspended_at", "updated_at"])
        audit_record(action="tenant.suspend", actor=actor, tenant=tenant, target=tenant.slug,
                     detail={"reason": reason[:200]})  # fmt: skip
    problems = _converge_access(tenant, actor=actor, step="suspend")
    if problems:
        raise LifecycleError("Suspended, but PBS still differs: " + "; ".join(problems), "Run a drift repair.")
    return tenant


def tenant_resume(*, tenant_id: int, actor: Any = None) -> Tenant:
    """Give writes back (re-add the roles suspend removed, enable the backup token)."""
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.SUSPENDED,))
        tenant.status = Tenant.Status.ACTIVE
        tenant.suspended_at = None
        tenant.save(update_fields=["status", "suspended_at", "updated_at"])
        audit_record(action="tenant.resume", actor=actor, tenant=tenant, target=tenant.slug)
    problems = _converge_access(tenant, actor=actor, step="resume")
    if problems:
        raise LifecycleError("Resumed, but PBS still differs: " + "; ".join(problems), "Run a drift repair.")
    return tenant


def tenant_writes_set(*, tenant_id: int, allowed: bool, reason: str = "", actor: Any = None) -> Tenant:
    """Stop or restart writes without suspending (e.g. quota enforcement by billing or
    alerts): same PBS effect as suspend/resume, tracked separately so the two never undo
    each other. Idempotent: calling it again re-applies the state on PBS."""
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED))
        if tenant.writes_blocked != (not allowed):
            tenant.writes_blocked = not allowed
            tenant.writes_blocked_reason = "" if allowed else reason[:200]
            tenant.save(update_fields=["writes_blocked", "writes_blocked_reason", "updated_at"])
            audit_record(
                action="tenant.writes.unblock" if allowed else "tenant.writes.block", actor=actor,
                tenant=tenant, target=tenant.slug, detail={"reason": reason[:200]},
            )  # fmt: skip
    # Converge even when the flag already matched: an earlier call may have stored the flag
    # and then failed on PBS, and a retry must still finish the job (check-before-change).
    problems = _converge_access(tenant, actor=actor, step="writes")
    if problems:
        raise LifecycleError("PBS still differs: " + "; ".join(problems), "Run a drift repair.")
    return tenant


def tenant_retention_update(*, tenant_id: int, retention: Retention, actor: Any = None) -> Tenant:
    """Change retention: the prune job is updated on PBS (PUT, with ``delete`` for keep-*
    values that are cleared), or created if it was missing."""
    errors = retention_problems(retention)
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update(of=("self",)).select_related("host", "datastore").get(pk=tenant_id)
        before = Retention.of(tenant)
        for field_name, value in retention.as_fields().items():
            setattr(tenant, field_name, value)
        tenant.save(update_fields=[*retention.as_fields(), "updated_at"])
        audit_record(
            action="tenant.retention.update", actor=actor, tenant=tenant, target=tenant.slug,
            detail={"before": before.as_fields(), "after": retention.as_fields()},
        )  # fmt: skip
    if tenant.status in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED) and tenant.host is not None:
        try:
            with client_for_host(tenant.host) as client:
                step_prune_job(context_for(tenant, client, actor=actor))
        except PbsError as exc:
            raise _lifecycle_error(
                exc, host=tenant.host, step="prune_job", store=tenant.datastore.name if tenant.datastore else ""
            ) from exc
    return tenant


# --- tokens ---------------------------------------------------------------------------------------


def tenant_token_rotate(*, tenant_id: int, actor: Any = None) -> TenantToken:
    """A new secret for the backup token, to be revealed once.

    ``regenerate`` where the host supports it (keeps the token's ACLs), else delete +
    create + re-ACL. The old portal row is revoked (its secret, if still kept, wiped) and
    a new row holds the new secret.
    """
    with transaction.atomic():
        tenant = _lock_onboarded_tenant(tenant_id, allowed=(Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED))
    names = stored_names(tenant)
    if tenant.host is None:
        raise ValidationError("The tenant has no PBS host.")
    try:
        with client_for_host(tenant.host) as client:
            ctx = context_for(tenant, client, actor=actor)
            enable = tenant.writes_allowed
            if ctx.state.token(names.userid, names.backup_token_name) is None:
                created = client.token_create(
                    names.userid, names.backup_token_name, comment=names.user_comment, enable=enable
                )
                secret, how = created.value, "created"
            else:
                secret, how = token_renew_secret(ctx, names.backup_token_name, enable=enable)
            # Keep a portal row for the secret before anything else can fail.
            with transaction.atomic():
                now = timezone.now()
                TenantToken.objects.filter(tenant=tenant, name=names.backup_token_name, revoked_at__isnull=True).update(
                    revoked_at=now, revoked_by=_actor(actor), secret_enc="", enabled=False
                )
                row = TenantToken.objects.create(
                    tenant=tenant, purpose=TenantToken.Purpose.BACKUP, name=names.backup_token_name,
                    tokenid=names.backup_tokenid, comment=names.user_comment, enabled=enable,
                    created_by=_actor(actor), secret_enc=encrypt_secret(secret),
                )  # fmt: skip
                audit_record(
                    action="token.rotate", actor=actor, tenant=tenant, target=names.backup_tokenid,
                    detail={"method": how, "host": tenant.host.name},
                )  # fmt: skip
            if how != "regenerated":
                converge_acl(ctx, names.backup_tokenid, desired_roles(tenant, names.backup_tokenid, names))
    except PbsError as exc:
        audit_record(action="token.rotate", actor=actor, tenant=tenant, target=names.backup_tokenid,
                     result="failed", detail={"error": str(exc)[:500]})  # fmt: skip
        raise _lifecycle_error(exc, host=tenant.host, step="backup_token") from exc
    return row


def restore_token_create(
    *, tenant_id: int, name: str, actor: Any = None, days: int | None = None, comment: str = ""
) -> TenantToken:
    """A read-only token ``<slug>@pbs!restore-<name>`` (DatastoreReader on the tenant's
    namespace) with an expiry; its secret is kept encrypted until revealed once."""
    tenant = Tenant.objects.select_related("host", "datastore").get(pk=tenant_id)
    if tenant.status not in (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED):
        raise ValidationError(f"Not possible while the tenant is {tenant.status}.")
    problems = restore_name_problems(tenant.slug, name)
    limit = min(tenant.max_restore_token_days, settings.PORTAL_MAX_RESTORE_TOKEN_DAYS)
    days = days or limit
    errors: dict[str, list[str]] = {}
    if problems:
        errors["name"] = problems
    if not 1 <= days <= limit:
        errors["days"] = [f"Use 1..{limit} days."]
    names = stored_names(tenant)
    token_name = names.restore_token_name(name)
    if TenantToken.objects.filter(tenant=tenant, name=token_name, revoked_at__isnull=True).exists():
        errors.setdefault("name", []).append(f"A restore token '{name}' exists.")
    if errors:
        raise ValidationError(errors)
    expires_at = timezone.now() + timedelta(days=days)
    tokenid = names.tokenid(token_name)
    comment = (comment or f"{names.user_comment} restore").replace("\n", " ")[:128]
    if tenant.host is None:
        raise ValidationError("The tenant has no PBS host.")
    try:
        with client_for_host(tenant.host) as client:
            try:
                created = client.token_create(
                    names.userid, token_name, comment=comment, expire=int(expires_at.timestamp())
                )
            except AlreadyExists as exc:
                raise LifecycleError(
                    f"PBS already has a token {tokenid} the portal does not know.",
                    "Pick another name, or delete that token on PBS if it is stale.",
                ) from exc
            with transaction.atomic():
                row = TenantToken.objects.create(
                    tenant=tenant, purpose=TenantToken.Purpose.RESTORE, name=token_name,
                    tokenid=tokenid, comment=comment, expires_at=expires_at,
                    created_by=_actor(actor), secret_enc=encrypt_secret(created.value),
                )  # fmt: skip
                audit_record(action="pbs.token.create", actor=actor, tenant=tenant, target=tokenid,
                             detail={"purpose": "restore", "days": days, "host": tenant.host.name})  # fmt: skip
            ctx = context_for(tenant, client, actor=actor)
            converge_acl(ctx, tokenid, {ROLE_RESTORE_TOKEN})
            # Check the token's effective rights as PBS resolves them (token ACL AND user).
            effective = restore_token_effective_privileges(client, tokenid, tenant.acl_path)
            problems = restore_privilege_problems(effective, acl_path=tenant.acl_path)
            if problems:
                with contextlib.suppress(PbsError):
                    client.token_delete(names.userid, token_name)
                with transaction.atomic():
                    TenantToken.objects.filter(pk=row.pk).update(revoked_at=timezone.now(), secret_enc="")
                    audit_record(action="token.rejected", actor=actor, tenant=tenant, target=tokenid,
                                 result="failed", detail={"problems": problems})  # fmt: skip
                raise LifecycleError(
                    f"The new token's rights on PBS were not as designed ({'; '.join(problems)}), so it "
                    "was deleted again.",
                    "Run a drift check on the tenant: its user's ACLs on PBS differ from the design.",
                )
            TenantToken.objects.filter(pk=row.pk).update(
                effective_privileges=effective, privileges_checked_at=timezone.now()
            )
    except PbsError as exc:
        raise _lifecycle_error(exc, host=tenant.host, step="token_acl") from exc
    row.refresh_from_db()
    return row


def token_revoke(*, token_id: int, actor: Any = None) -> TenantToken:
    """Delete the token on PBS (its ACLs go with it) and revoke it in the portal."""
    token = TenantToken.objects.select_related("tenant__host").get(pk=token_id)
    if token.revoked_at is not None:
        return token
    tenant = token.tenant
    if actor is not None and not can_view_tenant(actor, tenant):
        raise ValidationError("Not your tenant's token.")
    userid = token.tokenid.split("!", 1)[0]
    if tenant.host is not None and tenant.status != Tenant.Status.OFFBOARDED:
        try:
            with client_for_host(tenant.host) as client, contextlib.suppress(NotFound):
                client.token_delete(userid, token.name)
        except PbsError as exc:
            raise _lifecycle_error(exc, host=tenant.host, step="backup_token") from exc
    with transaction.atomic():
        TenantToken.objects.filter(pk=token.pk).update(
            revoked_at=timezone.now(), revoked_by=_actor(actor), secret_enc="", enabled=False
        )
        AclGrant.objects.filter(tenant=tenant, auth_id=token.tokenid).delete()
        audit_record(action="pbs.token.delete", actor=actor, tenant=tenant, target=token.tokenid,
                     detail={"reason": "revoke"})  # fmt: skip
    token.refresh_from_db()
    return token


def token_reveal(*, token_id: int, actor: Any = None, via: str = "web") -> str:
    """Return a token's secret exactly once, then destroy it (revealed_at/by recorded).

    Race-safe: the row is locked and the wipe is a conditional update, so two concurrent
    reveals give the secret to one of them and TokenAlreadyRevealed to the other.
    """
    with transaction.atomic():
        token = (
            TenantToken.objects.select_for_update(of=("self",)).select_related("tenant", "revealed_by").get(pk=token_id)
        )
        if actor is not None and not can_view_tenant(actor, token.tenant):
            raise ValidationError("Not your tenant's token.")
        if token.revoked_at is not None:
            raise ValidationError("This token was revoked; its secret is gone.")
        if not token.secret_enc:
            raise TokenAlreadyRevealed(token)
        ciphertext = token.secret_enc
        wiped = TenantToken.objects.filter(pk=token.pk, secret_enc=ciphertext).update(
            secret_enc="", revealed_at=timezone.now(), revealed_by=_actor(actor)
        )
        if not wiped:
            token.refresh_from_db()
            raise TokenAlreadyRevealed(token)
        audit_record(action="token.reveal", actor=actor, tenant=token.tenant, target=token.tokenid,
                     detail={"via": via})  # fmt: skip
        return decrypt_secret(ciphertext)


# --- drift -----------------------------------------------------------------------------------------


def _save_tenant_findings(tenant: Tenant, findings: list[dict[str, Any]], actor: Any, now: Any) -> None:
    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(drift_findings=findings, drift_checked_at=now)
        audit_record(
            action="tenant.drift.check", actor=actor, tenant=tenant, target=tenant.slug,
            result="ok" if not findings else "failed",
            detail={"findings": len(findings), "kinds": sorted({f["kind"] for f in findings})},
        )  # fmt: skip


def tenant_drift_check(*, tenant_id: int, actor: Any = None, state: PbsState | None = None) -> list[dict[str, Any]]:
    """Compare one tenant with PBS and store the findings on the tenant."""
    tenant = Tenant.objects.select_related("host", "datastore").get(pk=tenant_id)
    if tenant.host is None:
        return []
    try:
        if state is None:
            with client_for_host(tenant.host) as client:
                findings = drift.tenant_findings(tenant, LiveState(client))
        else:
            findings = drift.tenant_findings(tenant, state)
    except PbsError as exc:
        raise _lifecycle_error(exc, host=tenant.host) from exc
    _save_tenant_findings(tenant, findings, actor, timezone.now())
    return findings


def pbshost_drift_check(*, host_id: int, actor: Any = None) -> list[dict[str, Any]]:
    """Drift of every tenant on a host, plus tenant-like objects no tenant owns; one
    snapshot of the host's lists for all of it."""
    host = PbsHost.objects.get(pk=host_id)
    tenants = list(
        Tenant.objects.filter(host=host)
        .exclude(status__in=(Tenant.Status.PENDING, Tenant.Status.ONBOARDING))
        .select_related("datastore", "host")
    )
    now = timezone.now()
    all_findings: list[dict[str, Any]] = []
    try:
        with client_for_host(host) as client:
            state = SnapshotState(client)
            per_tenant = {tenant.pk: drift.tenant_findings(tenant, state) for tenant in tenants}
            unknown = drift.host_unknown_findings(host, state)
    except PbsError as exc:
        raise _lifecycle_error(exc, host=host) from exc
    for tenant in tenants:
        findings = per_tenant[tenant.pk]
        if findings != tenant.drift_findings or tenant.drift_checked_at is None:
            Tenant.objects.filter(pk=tenant.pk).update(drift_findings=findings, drift_checked_at=now)
        else:
            Tenant.objects.filter(pk=tenant.pk).update(drift_checked_at=now)
        all_findings += [{**f, "tenant": tenant.slug} for f in findings]
    all_findings += [{**f, "tenant": None} for f in unknown]
    all_findings += _other_apps_findings(host)
    with transaction.atomic():
        PbsHost.objects.filter(pk=host.pk).update(drift_findings=all_findings, drift_checked_at=now)
        audit_record(
            action="host.drift.check", actor=actor, target=host.name,
            result="ok" if not all_findings else "failed",
            detail={"findings": len(all_findings), "tenants": len(tenants)},
        )  # fmt: skip
    return all_findings


def _other_apps_findings(host: PbsHost) -> list[dict[str, Any]]:
    """Drift of what other apps keep on the host (offsite remotes and sync jobs)."""
    findings: list[dict[str, Any]] = []
    for _, response in send_logged(host_drift_checking, PbsHost, host=host):
        if isinstance(response, Exception):
            findings.append(drift.finding("check-failed", host.name, f"{response}", repairable=False, tenant=None))
        else:
            findings += [{"tenant": None, **f} for f in response or []]
    return findings


def pbshost_repair(*, host_id: int, actor: Any = None) -> list[OnboardingRun]:
    """Repair every tenant of the host whose last drift check found something repairable."""
    tenant_ids = [
        tenant.pk
        for tenant in Tenant.objects.filter(
            host_id=host_id, status__in=(Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)
        ).only("id", "drift_findings")
        if any(f.get("repairable") for f in tenant.drift_findings)
    ]
    runs = []
    for tenant_id in tenant_ids:
        run, _ = tenant_repair(tenant_id=tenant_id, actor=actor)
        runs.append(run)
    send_logged(host_repair_requested, PbsHost, host=PbsHost.objects.get(pk=host_id), actor=actor)
    return runs
