"""Backup health: age of the newest backup, failed verifications, per tenant and per host."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction

from alerts import selectors
from alerts.models import (
    Alert,
    BackupHealth,
)
from alerts.services.base import VERIFY_CHECK_INTERVAL, _now
from alerts.services.lifecycle import alert_raise, alert_resolve, alert_resolve_all_except
from pbsclient.errors import NotFound, PbsConnectionError, PbsError
from tenants.models import PbsHost, Tenant

logger = logging.getLogger(__name__)


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


def host_backup_health_check(*, host_id: int, client: Any = None, now: datetime | None = None) -> int:
    """One pass over a host's active tenants with one client. Returns tenants checked; a
    tenant whose check fails is recorded and the pass goes on."""
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


def alerts_hourly_host_ids() -> list[int]:
    """The hosts the hourly backup-health pass visits: enabled, with active tenants."""
    return list(
        PbsHost.objects.filter(enabled=True, tenants__status=Tenant.Status.ACTIVE)
        .values_list("pk", flat=True)
        .distinct()
    )
