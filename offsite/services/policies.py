"""Offsite policies: create, update and apply (one sync job per tenant or per datastore)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.permissions import ADMIN_ONLY, has_role
from audit.services import audit_record
from core.actors import actor_or_none
from offsite.models import OffsitePolicy, Remote, SyncJobRecord, TenantOffsite
from offsite.pbsformat import (
    SAFE_ID_RE,
)
from offsite.services.base import OffsiteError, sync_options_clean
from offsite.services.jobs import _record_for, _source_path, sync_job_ensure
from offsite.services.memberships import _tenant_job_ensure
from offsite.services.remotes import remote_create, remote_ensure, remote_grant_read
from pbsclient.errors import PbsError
from tenants.models import Tenant


def _target_ns_problem(target_datastore: Any, target_ns: str) -> str:
    """Why copies may not land in ``target_ns`` of the target datastore: inside a tenant's
    namespace, or anywhere under the tenants' parent, a copy would be readable with that
    tenant's tokens (another customer's backups poured into its reach)."""
    ns = target_ns.strip("/")
    if not ns:
        return ""
    tenant_spaces = set(
        Tenant.objects.filter(datastore=target_datastore).exclude(namespace="").values_list("namespace", flat=True)
    )
    parents = {settings.PORTAL_NAMESPACE_PARENT.strip("/")} | {n.rsplit("/", 1)[0] for n in tenant_spaces if "/" in n}
    for space in {p for p in parents if p} | tenant_spaces:
        if ns == space or ns.startswith(space + "/"):
            return (
                f"'{ns}' is inside '{space}', where tenants' namespaces live on {target_datastore}: "
                "copies there could be read with a tenant's tokens. Choose a namespace outside it, e.g. 'offsite'."
            )
    return ""


def _admin_only_scope(scope: str, actor: Any) -> None:
    """A datastore-wide policy copies every tenant's backups: only an MSP admin may make one."""
    if scope == OffsitePolicy.Scope.DATASTORE and actor_or_none(actor) is not None and not has_role(actor, ADMIN_ONLY):
        raise PermissionDenied("Only an MSP admin may replicate a whole datastore.")


def policy_create(
    *,
    target_datastore: Any,
    source_datastore: Any = None,
    remote: Remote | None = None,
    source_store: str = "",
    scope: str = OffsitePolicy.Scope.DATASTORE,
    auto_include_tenants: bool = False,
    target_ns: str = "",
    schedule: str = "hourly",
    rate_in: str = "",
    burst_in: str = "",
    remove_vanished: bool = False,
    encrypted_only: bool = False,
    verified_only: bool = False,
    transfer_last: int | None = None,
    group_filters: Iterable[str] = (),
    owner: str = "",
    max_depth: int | None = None,
    stale_after_hours: int = 48,
    comment: str = "",
    actor: Any = None,
    apply: bool = True,
) -> OffsitePolicy:
    """Create a replication policy (and, by default, its remote, grants and sync job(s)).

    A portal datastore as source gets a managed remote on the target's host; an external
    source needs an existing external ``remote`` of the target host and ``source_store``.
    """
    _admin_only_scope(scope, actor)
    errors: dict[str, str] = {}
    ns_problem = _target_ns_problem(target_datastore, target_ns)
    if ns_problem:
        errors["target_ns"] = ns_problem
    if source_datastore is not None:
        if source_datastore.host_id == target_datastore.host_id:
            errors["target_datastore"] = "the offsite copy must be on another PBS host"
        source_store = source_datastore.name
    else:
        if remote is None or remote.kind != Remote.Kind.EXTERNAL:
            errors["remote"] = "without a source datastore, give an external remote"
        elif remote.pulling_host_id != target_datastore.host_id:
            errors["remote"] = "the remote must be configured on the target datastore's host"
        if not source_store or not SAFE_ID_RE.fullmatch(source_store):
            errors["source_store"] = "name the datastore on the external source"
        if scope == OffsitePolicy.Scope.TENANTS:
            errors["scope"] = "tenant-scoped replication needs a portal datastore as source"
    if scope not in OffsitePolicy.Scope.values:
        errors["scope"] = f"scope must be one of {', '.join(OffsitePolicy.Scope.values)}"
    if errors:
        raise ValidationError(errors)
    cleaned = sync_options_clean(
        schedule=schedule,
        rate_in=rate_in,
        burst_in=burst_in,
        transfer_last=transfer_last,
        group_filters=group_filters,
        owner=owner,
        max_depth=max_depth,
        target_ns=target_ns,
    )
    if source_datastore is not None and remote is None:
        remote = remote_create(
            pulling_host=target_datastore.host,
            source_host=source_datastore.host,
            actor=actor,
            ensure=apply,
        )
    assert remote is not None  # noqa: S101 (set above or validated)
    if OffsitePolicy.objects.filter(
        remote=remote, source_store=source_store, target_datastore=target_datastore
    ).exists():
        raise ValidationError({"target_datastore": "this source is already replicated there"})
    with transaction.atomic():
        policy = OffsitePolicy.objects.create(
            source_datastore=source_datastore,
            source_store=source_store,
            target_datastore=target_datastore,
            remote=remote,
            scope=scope,
            auto_include_tenants=auto_include_tenants,
            remove_vanished=remove_vanished,
            encrypted_only=encrypted_only,
            verified_only=verified_only,
            stale_after_hours=stale_after_hours,
            comment=comment,
            created_by=actor_or_none(actor),
            **cleaned,
        )
        audit_record(
            action="offsite.policy_create",
            actor=actor,
            target=f"policy/{policy.pk}",
            detail={
                "source": f"{remote.name}/{source_store}",
                "target": str(target_datastore),
                "scope": scope,
            },
        )
    if apply:
        try:
            policy_apply(policy=policy, actor=actor)
        except OffsiteError as exc:
            exc.policy_id = policy.pk
            raise
        except PbsError as exc:
            error = OffsiteError(f"PBS refused: {exc}")
            error.policy_id = policy.pk
            raise error from exc
    return policy


def policy_update(*, policy: OffsitePolicy, actor: Any = None, apply: bool = True, **options: Any) -> OffsitePolicy:
    """Change a policy's sync options and converge its jobs on PBS."""
    allowed = {
        "schedule",
        "rate_in",
        "burst_in",
        "remove_vanished",
        "encrypted_only",
        "verified_only",
        "transfer_last",
        "group_filters",
        "owner",
        "max_depth",
        "stale_after_hours",
        "comment",
        "enabled",
        "auto_include_tenants",
        "target_ns",
    }
    unknown = set(options) - allowed
    if unknown:
        raise ValidationError(dict.fromkeys(unknown, "cannot be changed"))
    if "target_ns" in options:
        ns_problem = _target_ns_problem(policy.target_datastore, options["target_ns"] or "")
        if ns_problem:
            raise ValidationError({"target_ns": ns_problem})
    merged = {
        k: options.get(k, getattr(policy, k))
        for k in ("schedule", "rate_in", "burst_in", "transfer_last", "owner", "max_depth", "target_ns")
    }
    cleaned = sync_options_clean(group_filters=options.get("group_filters", policy.group_filters), **merged)
    for key, value in {**options, **cleaned}.items():
        setattr(policy, key, value)
    with transaction.atomic():
        policy.save()
        audit_record(
            action="offsite.policy_update",
            actor=actor,
            target=f"policy/{policy.pk}",
            detail={"changed": sorted(options)},
        )
    if apply:
        policy_apply(policy=policy, actor=actor)
    return policy


def policy_apply(*, policy: OffsitePolicy, actor: Any = None) -> list[SyncJobRecord]:
    """Converge PBS with a policy.

    Steps: 1. the remote; 2. datastore scope: the pull grant on the source datastore, the one
    job, and a membership for every tenant on the source datastore (for staleness);
    tenants scope: for each membership, its grant and its job.
    """
    remote_ensure(remote=policy.remote, actor=actor)
    records: list[SyncJobRecord] = []
    if policy.scope == OffsitePolicy.Scope.DATASTORE:
        remote_grant_read(remote=policy.remote, path=_source_path(policy), actor=actor)
        record = _record_for(policy=policy, membership=None)
        records.append(sync_job_ensure(record=record, actor=actor))
        if policy.source_datastore_id:
            from tenants.models import Tenant

            live = (
                Tenant.objects.filter(datastore_id=policy.source_datastore_id)
                .exclude(status__in=[Tenant.Status.OFFBOARDED, Tenant.Status.OFFBOARDING])
                .exclude(namespace="")
            )
            for tenant in live:
                TenantOffsite.objects.get_or_create(tenant=tenant, policy=policy)
    else:
        for membership in policy.memberships.select_related("tenant"):
            records.append(_tenant_job_ensure(membership=membership, actor=actor))
    return records
