"""Sync jobs on the pulling host: the wanted job of a record, privilege pre-check, ensure, run, remove."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from offsite import pbs as pbsops
from offsite.models import OffsitePolicy, Remote, SyncJobRecord, TenantOffsite
from offsite.pbsformat import (
    datastore_job_id,
    ns_join,
    tenant_job_id,
)
from offsite.services.base import ROOT_AUTH_ID, MissingPrivilege, OffsiteError, PrivilegeMissing, _client
from pbsclient.errors import PbsError


def _source_path(policy: OffsitePolicy, tenant: Any = None) -> str:
    if tenant is not None:
        return f"/datastore/{policy.source_store}/{tenant.namespace}".rstrip("/")
    return f"/datastore/{policy.source_store}"


def _record_for(*, policy: OffsitePolicy, membership: TenantOffsite | None) -> SyncJobRecord:
    target = policy.target_datastore
    if membership is None:
        job_id = datastore_job_id(policy.pk)
        ns, remote_ns = policy.target_ns, ""
        lookup: dict[str, Any] = {"policy": policy, "membership": None}
    else:
        tenant = membership.tenant
        job_id = tenant_job_id(policy.pk, tenant.slug)
        ns, remote_ns = ns_join(policy.target_ns, tenant.namespace), tenant.namespace
        lookup = {"membership": membership}
    record, _ = SyncJobRecord.objects.get_or_create(
        **lookup,
        defaults={
            "policy": policy,
            "host_id": target.host_id,
            "job_id": job_id,
            "store": target.name,
            "ns": ns,
            "remote_name": policy.remote.name,
            "remote_store": policy.source_store,
            "remote_ns": remote_ns,
        },
    )
    return record


def sync_job_wanted(record: SyncJobRecord) -> dict[str, Any]:
    """The PBS config (kebab-case keys) a record's job must have."""
    policy = record.policy
    max_depth = policy.max_depth
    if record.membership_id and record.membership.max_depth is not None:
        max_depth = record.membership.max_depth
    what = f"tenant {record.membership.tenant.slug}" if record.membership_id else "datastore"
    return pbsops.job_normalize(
        {
            "store": record.store,
            "ns": record.ns or None,
            "remote": record.remote_name,
            "remote-store": record.remote_store,
            "remote-ns": record.remote_ns or None,
            "remove-vanished": policy.remove_vanished,
            "max-depth": max_depth,
            # A disabled policy keeps its jobs (and copies) but stops scheduling them.
            "schedule": (policy.schedule or None) if policy.enabled else None,
            "group-filter": list(policy.group_filters),
            "transfer-last": policy.transfer_last,
            "encrypted-only": policy.encrypted_only,
            "verified-only": policy.verified_only,
            "rate-in": policy.rate_in or None,
            "burst-in": policy.burst_in or None,
            "owner": policy.owner or None,
            "comment": f"portal offsite policy {policy.pk} ({what})",
        }
    )


def _privs_on(client: Any, auth_id: str | None, path: str) -> set[str]:
    perms = client.permissions_get(auth_id=auth_id, path=path)
    return {priv for priv, _propagate in (perms.get(path) or {}).items()}


def _owner_is_caller(owner: str | None, caller: str) -> bool:
    """PBS's check_sync_job_modify_access owner rule."""
    if not owner:
        return caller == ROOT_AUTH_ID
    if owner == caller:
        return True
    return "!" in owner and "!" not in caller and owner.split("!", 1)[0] == caller


def sync_job_privileges_missing(
    *, client: Any, host_label: str, caller: str, wanted: dict[str, Any]
) -> list[MissingPrivilege]:
    """What PBS's pull-job access check (pbs-api 11.2/11.3) would find missing for ``caller``.

    Asks /access/permissions for the caller on the target (store/ns) path and on
    /remote/{remote}/{remote-store} (the only path PBS checks Remote.Read on).
    """
    missing: list[MissingPrivilege] = []
    target = "/".join(p for p in ("/datastore", wanted["store"], wanted.get("ns") or "") if p)
    have = _privs_on(client, caller, target)
    need = [
        ("Datastore.Backup", "to write the synced snapshots"),
        ("Datastore.Audit", "PBS checks it for every pull job"),
    ]
    if wanted.get("remove-vanished"):
        need.append(("Datastore.Prune", "remove-vanished is on"))
    if not _owner_is_caller(wanted.get("owner"), caller):
        owner = wanted.get("owner") or ROOT_AUTH_ID
        need.append(("Datastore.Modify", f"the synced groups are owned by {owner}, not the caller"))
    missing += [
        MissingPrivilege(host_label, caller, priv, target, why)
        for priv, why in need
        if priv not in have
    ]
    if wanted.get("remote"):
        remote_path = f"/remote/{wanted['remote']}/{wanted['remote-store']}"
        if "Remote.Read" not in _privs_on(client, caller, remote_path):
            missing.append(
                MissingPrivilege(host_label, caller, "Remote.Read", remote_path, "to pull from it")
            )
    return missing


def _source_privileges_missing(record: SyncJobRecord) -> list[MissingPrivilege]:
    """Managed remotes: can the pull token read what the job pulls, on the source host?"""
    remote = record.policy.remote
    if remote.kind != Remote.Kind.MANAGED:
        return []
    path = "/".join(p for p in ("/datastore", record.remote_store, record.remote_ns) if p)
    with _client(remote.source_host) as src:
        have = _privs_on(src, remote.auth_id, path)
    return [
        MissingPrivilege(remote.source_host.name, remote.auth_id, priv, path, "the pull reads it")
        for priv in ("Datastore.Read", "Datastore.Audit")
        if priv not in have
    ]


def _ensure_namespace(client: Any, store: str, ns: str) -> None:
    parent = ""
    for component in [c for c in ns.split("/") if c]:
        existing = {n.ns for n in client.namespace_list(store, parent=parent or None, max_depth=1)}
        full = ns_join(parent, component)
        if full not in existing:
            client.namespace_create(store, component, parent=parent or None)
        parent = full


def sync_job_ensure(*, record: SyncJobRecord, actor: Any = None) -> SyncJobRecord:
    """Create or converge one sync job on its pulling host, after the privilege pre-check.

    Steps: 1. the wanted config; 2. the privileges PBS will check, for the automation token on
    the pulling host and the pull token on the source: refuse with the missing ones named;
    3. the target namespace; 4. GET the job, POST when absent, PUT what differs.
    """
    wanted = sync_job_wanted(record)
    host = record.host
    try:
        with _client(host) as client:
            missing = sync_job_privileges_missing(
                client=client, host_label=host.name, caller=host.token_id, wanted=wanted
            )
            missing += _source_privileges_missing(record)
            if missing:
                raise PrivilegeMissing(missing)
            if record.ns:
                _ensure_namespace(client, record.store, record.ns)
            actual = pbsops.job_get(client, record.job_id)
            if actual is None:
                pbsops.job_create(client, record.job_id, wanted)
                outcome, changed = "created", list(wanted)
            else:
                changed = pbsops.job_update(client, record.job_id, wanted, actual)
                outcome = "updated" if changed else "existed"
    except (PbsError, OffsiteError) as exc:
        SyncJobRecord.objects.filter(pk=record.pk).update(
            state=SyncJobRecord.State.FAILED, last_error=str(exc)
        )
        record.state, record.last_error = SyncJobRecord.State.FAILED, str(exc)
        raise
    with transaction.atomic():
        now = timezone.now()
        SyncJobRecord.objects.filter(pk=record.pk).update(
            state=SyncJobRecord.State.PRESENT, last_error="", ensured_at=now
        )
        record.state, record.last_error, record.ensured_at = SyncJobRecord.State.PRESENT, "", now
        if outcome != "existed":
            audit_record(
                action="offsite.sync_job_ensure",
                actor=actor,
                tenant=record.membership.tenant if record.membership_id else None,
                target=f"{host.name}:sync/{record.job_id}",
                detail={"outcome": outcome, "changed": changed},
            )
    return record


def sync_job_run(*, record: SyncJobRecord, actor: Any = None) -> str:
    """Start the job now (POST /admin/sync/{id}/run); returns the task UPID."""
    with _client(record.host) as client:
        upid = client.sync_job_run(record.job_id)
    with transaction.atomic():
        SyncJobRecord.objects.filter(pk=record.pk).update(last_run_upid=upid)
        record.last_run_upid = upid
        audit_record(
            action="offsite.sync_job_run",
            actor=actor,
            tenant=record.membership.tenant if record.membership_id else None,
            target=f"{record.host.name}:sync/{record.job_id}",
            detail={"upid": upid},
        )
    return upid


def sync_job_remove(*, record: SyncJobRecord, actor: Any = None) -> bool:
    """Delete the job on PBS (absent is fine) and forget the record."""
    with _client(record.host) as client:
        existed = pbsops.job_delete(client, record.job_id)
    with transaction.atomic():
        audit_record(
            action="offsite.sync_job_remove",
            actor=actor,
            tenant=record.membership.tenant if record.membership_id else None,
            target=f"{record.host.name}:sync/{record.job_id}",
            detail={"existed": existed},
        )
        record.delete()
    return existed
