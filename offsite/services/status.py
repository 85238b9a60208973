"""Sync job status and the staleness of each tenant copy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from core.signals import send_logged
from offsite import pbs as pbsops
from offsite.models import OffsitePolicy, SyncJobRecord, TenantOffsite
from offsite.pbsformat import (
    group_passes,
    ns_join,
    parse_group_filter,
)
from offsite.services.base import _client
from offsite.signals import offsite_staleness_refreshed
from pbsclient.errors import NotFound, PbsError


def _epoch(value: Any) -> datetime | None:
    if value in (None, "", 0):
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(int(value), tz=UTC)


def sync_status_refresh(*, host: Any) -> int:
    """Read /admin/sync on a pulling host and store last run, state and next run per record."""
    records = {r.job_id: r for r in SyncJobRecord.objects.filter(host=host)}
    if not records:
        return 0
    with _client(host) as client:
        statuses = {s["id"]: s for s in pbsops.job_status_list(client)}
    now = timezone.now()
    for job_id, record in records.items():
        status = statuses.get(job_id)
        if status is None:
            SyncJobRecord.objects.filter(pk=record.pk).update(
                state=SyncJobRecord.State.FAILED,
                last_error=f"sync job '{job_id}' is missing on {host.name}",
                status_checked_at=now,
            )
            continue
        SyncJobRecord.objects.filter(pk=record.pk).update(
            status_checked_at=now,
            last_run_state=(status.get("last-run-state") or "")[:255],
            last_run_at=_epoch(status.get("last-run-endtime")),
            last_run_upid=status.get("last-run-upid") or record.last_run_upid,
            next_run_at=_epoch(status.get("next-run")),
        )
    return len(records)


@dataclass
class _Newest:
    newest: datetime | None = None
    newest_due: datetime | None = None
    bytes: int = 0
    count: int = 0
    extra: list[str] = field(default_factory=list)


def _absent(exc: PbsError) -> bool:
    """A namespace that does not exist: PBS answers 400 with the OS error (ENOENT)."""
    return isinstance(exc, NotFound) or (
        getattr(exc, "status", None) == 400 and "ENOENT" in str(getattr(exc, "message", exc))
    )


def _scan_namespace_tree(
    client: Any, store: str, ns: str, *, policy: OffsitePolicy, due_before: datetime | None
) -> _Newest:
    filters = [parse_group_filter(g) for g in policy.group_filters]
    try:
        namespaces = [n.ns for n in client.namespace_list(store, parent=ns or None)]
    except PbsError as exc:
        if _absent(exc):
            return _Newest()
        raise
    if ns not in namespaces:
        namespaces.append(ns)
    out = _Newest()
    for name in namespaces:
        try:
            snapshots = client.snapshot_list(store, ns=name or None)
        except PbsError as exc:
            if _absent(exc):  # no copy there yet
                continue
            raise
        for snap in snapshots:
            if not group_passes(filters, snap.backup_type, snap.backup_id):
                continue
            if policy.verified_only and getattr(snap, "verification_state", None) != "ok":
                continue
            when = _epoch(snap.backup_time)
            out.count += 1
            out.bytes += int(snap.size or 0)
            if when and (out.newest is None or when > out.newest):
                out.newest = when
            if when and due_before and when <= due_before and (
                out.newest_due is None or when > out.newest_due
            ):
                out.newest_due = when
    return out


def membership_staleness_refresh(*, membership: TenantOffsite, now: datetime | None = None) -> TenantOffsite:
    """Compare the newest snapshot of the tenant on the source with its offsite copy.

    Stale = a source snapshot older than ``stale_after_hours`` is newer than anything in the
    copy (so regular backups in flight don't count as lag). Also stores the copy's logical
    size for the optional billing line.
    """
    now = now or timezone.now()
    policy, tenant = membership.policy, membership.tenant
    if not tenant.namespace:
        # Not onboarded yet: an empty namespace would mean the whole datastore.
        return membership
    due_before = now - timedelta(hours=policy.stale_after_hours)
    target_ns = ns_join(policy.target_ns, tenant.namespace)
    try:
        with _client(policy.source_datastore.host, purpose="metering") as src:
            source = _scan_namespace_tree(
                src, policy.source_store, tenant.namespace, policy=policy, due_before=due_before
            )
        with _client(policy.target_datastore.host, purpose="metering") as dst:
            target = _scan_namespace_tree(
                dst, policy.target_datastore.name, target_ns, policy=policy, due_before=None
            )
    except PbsError as exc:
        TenantOffsite.objects.filter(pk=membership.pk).update(last_error=str(exc), checked_at=now)
        membership.last_error = str(exc)
        return membership
    stale, reason = False, ""
    if source.newest_due and (target.newest is None or target.newest < source.newest_due):
        stale = True
        behind = f"{source.newest_due:%Y-%m-%d %H:%M} UTC"
        reason = (
            f"no offsite copy yet; source has snapshots since {behind}"
            if target.newest is None
            else f"offsite copy ends {target.newest:%Y-%m-%d %H:%M} UTC, source has {behind}"
        )
    fields = {
        "checked_at": now,
        "source_newest_at": source.newest,
        "target_newest_at": target.newest,
        "stale": stale,
        "stale_reason": reason[:255],
        "target_logical_bytes": target.bytes,
        "target_snapshot_count": target.count,
        "last_error": "",
    }
    TenantOffsite.objects.filter(pk=membership.pk).update(**fields)
    for key, value in fields.items():
        setattr(membership, key, value)
    # The alerts app owns the offsite_stale alert; it follows this refresh through the signal.
    send_logged(offsite_staleness_refreshed, sender=TenantOffsite, memberships=[membership])
    return membership


def offsite_status_refresh(*, host: Any) -> dict[str, int]:
    """Refresh a pulling host: job status from PBS, then staleness of the tenants it copies."""
    jobs = sync_status_refresh(host=host)
    memberships = TenantOffsite.objects.filter(
        policy__target_datastore__host=host, policy__source_datastore__isnull=False
    ).select_related(
        "tenant",
        "policy__source_datastore__host",
        "policy__target_datastore__host",
    )
    stale = 0
    for membership in memberships:
        stale += membership_staleness_refresh(membership=membership).stale
    return {"jobs": jobs, "tenants": len(memberships), "stale": stale}
