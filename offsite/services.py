"""Offsite replication: writes. Every PBS change is check-before-create and safe to re-run.

Entry points other apps call:
- ``tenant_offsite_include(tenant)`` from onboarding: puts the tenant into every enabled
  policy of its datastore (own sync job for ``tenants`` policies with auto-include);
- ``tenant_offsite_remove(tenant)`` from offboarding: deletes its tenant-scoped jobs and the
  pull user's grant on its namespace;
- ``offsite_drift(host)`` from the drift check: remotes and sync jobs that differ from the
  portal's records (``DriftItem.as_finding()`` gives the tenants.drift finding shape), and
  ``offsite_repair(host)`` to converge them again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_record
from core.crypto import decrypt_secret, encrypt_secret
from offsite import pbs as pbsops
from offsite.models import OffsitePolicy, Remote, SourceGrant, SyncJobRecord, TenantOffsite
from offsite.pbsformat import (
    SAFE_ID_RE,
    bounded_id,
    datastore_job_id,
    group_passes,
    normalize_byte_size,
    normalize_group_filters,
    ns_depth,
    ns_join,
    parse_group_filter,
    remote_name_for,
    tenant_job_id,
)
from pbsclient import validation
from pbsclient.errors import AlreadyExists, NotFound, PbsError

log = logging.getLogger(__name__)

PULL_TOKEN_NAME = "pull"  # noqa: S105 (a token name, not a secret)
PULL_ROLE = "DatastoreReader"
ROOT_AUTH_ID = "root@pam"
MAX_NAMESPACE_DEPTH = 7


class OffsiteError(Exception):
    """An offsite operation could not be done; ``str()`` says what and why (never a secret).
    ``policy_id`` is set when a policy was saved but PBS could not be converged yet."""

    policy_id: int | None = None

    def hint(self) -> str:
        if self.policy_id is None:
            return str(self)
        return f"{self} (policy {self.policy_id} is saved: fix this, then apply it again)"


@dataclass(frozen=True)
class MissingPrivilege:
    host: str
    auth_id: str
    privilege: str
    path: str
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.auth_id} lacks {self.privilege} on {self.path} on host {self.host}"
            f" ({self.reason})"
        )


class PrivilegeMissing(OffsiteError):
    """PBS would refuse the sync job: names each missing privilege, path and reason."""

    def __init__(self, missing: list[MissingPrivilege]) -> None:
        self.missing = missing
        super().__init__("missing privileges: " + "; ".join(str(m) for m in missing))


# --- PBS access -----------------------------------------------------------------------------


def _client(host: Any, purpose: str = "automation") -> Any:
    from tenants.pbs import client_for_host

    return client_for_host(host, purpose=purpose)


def _host_address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise OffsiteError(f"host URL {url!r} has no host name")
    return parts.hostname, parts.port or 8007


# --- validation -----------------------------------------------------------------------------


def _check(errors: dict[str, str], name: str, func: Any, value: Any) -> None:
    try:
        func(value)
    except ValueError as exc:
        errors[name] = str(exc)


def sync_options_clean(
    *,
    schedule: str = "",
    rate_in: str = "",
    burst_in: str = "",
    transfer_last: int | None = None,
    group_filters: Iterable[str] = (),
    owner: str = "",
    max_depth: int | None = None,
    target_ns: str = "",
    remote_ns: str = "",
) -> dict[str, Any]:
    """Validate sync job options as PBS would and return their stored forms.

    Raises ValidationError (field -> message). Stored forms follow PBS: ``include:type:vm``
    becomes ``type:vm``, ``10MiB`` becomes ``10 MiB``.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    if schedule:
        _check(errors, "schedule", validation.validate_calendar_event, schedule)
    cleaned["schedule"] = schedule
    for name, value in (("rate_in", rate_in), ("burst_in", burst_in)):
        try:
            cleaned[name] = normalize_byte_size(value) if value else ""
        except ValueError as exc:
            errors[name] = str(exc)
    if transfer_last is not None and transfer_last < 1:
        errors["transfer_last"] = f"value must have a minimum value of 1 (got {transfer_last})"
    cleaned["transfer_last"] = transfer_last
    try:
        cleaned["group_filters"] = normalize_group_filters([g for g in group_filters if g])
    except ValueError as exc:
        errors["group_filters"] = str(exc)
    if owner:
        _check(
            errors,
            "owner",
            validation.validate_tokenid if "!" in owner else validation.validate_userid,
            owner,
        )
    cleaned["owner"] = owner
    if max_depth is not None and not 0 <= max_depth <= MAX_NAMESPACE_DEPTH:
        errors["max_depth"] = "max-depth must be between 0 and 7"
    for name, ns in (("target_ns", target_ns), ("remote_ns", remote_ns)):
        if ns:
            _check(errors, name, validation.validate_namespace, ns)
        if max_depth is not None and ns and ns_depth(ns) + max_depth > MAX_NAMESPACE_DEPTH:
            errors.setdefault(
                "max_depth",
                f"namespace '{ns}' depth {ns_depth(ns)} plus max-depth {max_depth} exceeds 7",
            )
    cleaned["max_depth"] = max_depth
    cleaned["target_ns"] = target_ns.strip("/")
    if errors:
        raise ValidationError(errors)
    return cleaned


# --- remotes --------------------------------------------------------------------------------


def _pull_userid(pulling_host_name: str) -> str:
    # A dedicated user per pulling host; the name part must leave room for "@realm!pull".
    return f"{bounded_id('offsite-pull-', pulling_host_name, limit=40)}@{settings.PORTAL_PBS_REALM}"


def remote_create(
    *,
    pulling_host: Any,
    source_host: Any = None,
    name: str = "",
    host: str = "",
    port: int = 8007,
    fingerprint: str = "",
    auth_id: str = "",
    secret: str = "",
    comment: str = "",
    actor: Any = None,
    ensure: bool = True,
) -> Remote:
    """Record a remote on ``pulling_host`` and (by default) make it real on PBS.

    Managed (``source_host`` given): address and fingerprint come from the host row, the
    credential is a dedicated read-only token the portal makes on the source. Calling it again
    for the same pair returns the existing remote (after ensuring it).
    External: ``host``, ``fingerprint``, ``auth_id`` and ``secret`` are required.
    """
    if source_host is not None:
        existing = Remote.objects.filter(
            pulling_host=pulling_host, source_host=source_host, kind=Remote.Kind.MANAGED
        ).first()
        if existing is not None:
            return remote_ensure(remote=existing, actor=actor) if ensure else existing
        if source_host.pk == pulling_host.pk:
            raise ValidationError({"source_host": "the source must be another PBS host"})
        if not source_host.fingerprint:
            raise ValidationError(
                {"source_host": f"host {source_host.name} has no pinned fingerprint; set it first"}
            )
        host, port = _host_address(source_host.url)
        fingerprint = source_host.fingerprint
        userid = _pull_userid(pulling_host.name)
        auth_id = f"{userid}!{PULL_TOKEN_NAME}"
        name = name or remote_name_for(source_host.name)
        kind = Remote.Kind.MANAGED
    else:
        userid = ""
        kind = Remote.Kind.EXTERNAL
        errors: dict[str, str] = {}
        if not host:
            errors["host"] = "an external remote needs a host name or IP"
        if not fingerprint:
            errors["fingerprint"] = "an external remote needs the pinned certificate fingerprint"
        if not secret:
            errors["secret"] = "an external remote needs its token secret"  # noqa: S105
        if not name:
            errors["name"] = "an external remote needs a name"
        if errors:
            raise ValidationError(errors)
    errors = {}
    if not (3 <= len(name) <= 32 and SAFE_ID_RE.match(name)):
        errors["name"] = "remote name must be a SAFE_ID of 3..32 characters"
    _check(errors, "fingerprint", validation.validate_fingerprint, fingerprint)
    _check(
        errors,
        "auth_id",
        validation.validate_tokenid if "!" in auth_id else validation.validate_userid,
        auth_id,
    )
    if not 1 <= int(port) <= 65535:
        errors["port"] = "port must be 1..65535"
    if Remote.objects.filter(pulling_host=pulling_host, name=name).exists():
        errors["name"] = f"remote '{name}' already exists on {pulling_host.name}"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if source_host is not None:
            # A concurrent call for the same pair may have won the race: use its row.
            raced = Remote.objects.select_for_update().filter(pulling_host=pulling_host, name=name).first()
            if raced is not None:
                return remote_ensure(remote=raced, actor=actor) if ensure else raced
        remote = Remote.objects.create(
            pulling_host=pulling_host,
            name=name,
            kind=kind,
            source_host=source_host,
            host=host,
            port=port,
            fingerprint=fingerprint.lower(),
            auth_id=auth_id,
            secret_enc=encrypt_secret(secret),
            source_userid=userid,
            comment=comment,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            action="offsite.remote_create",
            actor=actor,
            target=f"{pulling_host.name}:remote/{name}",
            detail={"kind": kind, "host": host, "port": port, "auth_id": auth_id},
        )
    return remote_ensure(remote=remote, actor=actor) if ensure else remote


def _source_credential_ensure(remote: Remote, actor: Any) -> bool:
    """Managed remotes: user + token on the source, and their grants. Returns True when the
    secret is new (so the pulling host's remote needs it)."""
    src = _client(remote.source_host)
    userid = remote.source_userid
    with src:
        try:
            src.user_get(userid)
        except NotFound:
            with contextlib.suppress(AlreadyExists):
                src.user_create(
                    userid=userid,
                    comment=f"Offsite pulls for {remote.pulling_host.name} (portal-managed)",
                )
        secret = decrypt_secret(remote.secret_enc)
        try:
            src.token_get(userid, PULL_TOKEN_NAME)
            token_exists = True
        except NotFound:
            token_exists = False
        new_secret = ""
        if not token_exists:
            new_secret = src.token_create(
                userid, PULL_TOKEN_NAME, comment="Offsite pull (portal-managed)"
            ).value
        elif not secret:
            # The secret is lost (never kept or wiped): rotate it, keeping the token's ACLs.
            if remote.source_host.supports_regenerate is False:
                src.token_delete(userid, PULL_TOKEN_NAME)
                new_secret = src.token_create(
                    userid, PULL_TOKEN_NAME, comment="Offsite pull (portal-managed)"
                ).value
            else:
                new_secret = src.token_update(userid, PULL_TOKEN_NAME, regenerate=True) or ""
        for grant in remote.source_grants.all():
            _acl_ensure(src, path=grant.path, auth_id=grant.auth_id, role=grant.role)
    if new_secret:
        with transaction.atomic():
            Remote.objects.filter(pk=remote.pk).update(secret_enc=encrypt_secret(new_secret))
            remote.secret_enc = encrypt_secret(new_secret)
            audit_record(
                action="offsite.pull_token_issue",
                actor=actor,
                target=f"{remote.source_host.name}:{userid}!{PULL_TOKEN_NAME}",
                detail={"remote": remote.name, "pulling_host": remote.pulling_host.name},
            )
        return True
    return False


def _acl_ensure(client: Any, *, path: str, auth_id: str, role: str) -> bool:
    entries = client.acl_list(path=path, exact=True)
    if any(e.ugid == auth_id and e.roleid == role and e.path == path for e in entries):
        return False
    client.acl_update(path=path, role=role, auth_id=auth_id, propagate=True)
    return True


def remote_ensure(*, remote: Remote, actor: Any = None) -> Remote:
    """Make the remote on the pulling host match the record (create, or converge with PUT).

    Steps: 1. managed: pull user, token and grants on the source; 2. GET the remote on the
    pulling host; 3. POST it when absent, PUT what differs (and the secret when it is new).
    """
    try:
        secret_new = (
            _source_credential_ensure(remote, actor)
            if remote.kind == Remote.Kind.MANAGED
            else False
        )
        wanted = {
            "host": remote.host,
            "port": remote.port,
            "auth-id": remote.auth_id,
            "fingerprint": remote.fingerprint,
        }
        with _client(remote.pulling_host) as dst:
            actual = pbsops.remote_get(dst, remote.name)
            if actual is None:
                dst.remote_create(
                    name=remote.name,
                    host=remote.host,
                    port=remote.port,
                    auth_id=remote.auth_id,
                    password=decrypt_secret(remote.secret_enc),
                    fingerprint=remote.fingerprint or None,
                    comment=remote.comment or "portal-managed offsite remote",
                )
                outcome = "created"
            else:
                actual_cmp = {
                    "host": actual.get("host"),
                    "port": actual.get("port") or 8007,
                    "auth-id": actual.get("auth-id"),
                    "fingerprint": (actual.get("fingerprint") or "").lower(),
                }
                changed = [k for k in wanted if wanted[k] != actual_cmp[k]]
                if changed or secret_new:
                    kwargs: dict[str, Any] = {k.replace("-", "_"): wanted[k] for k in changed}
                    if secret_new:
                        kwargs["password"] = decrypt_secret(remote.secret_enc)
                    dst.remote_update(remote.name, **kwargs)
                    outcome = "updated"
                else:
                    outcome = "existed"
    except (PbsError, OffsiteError) as exc:
        Remote.objects.filter(pk=remote.pk).update(state=Remote.State.FAILED, last_error=str(exc))
        remote.state, remote.last_error = Remote.State.FAILED, str(exc)
        raise
    with transaction.atomic():
        now = timezone.now()
        Remote.objects.filter(pk=remote.pk).update(
            state=Remote.State.READY, last_error="", ensured_at=now
        )
        remote.state, remote.last_error, remote.ensured_at = Remote.State.READY, "", now
        if outcome != "existed":
            audit_record(
                action="offsite.remote_ensure",
                actor=actor,
                target=f"{remote.pulling_host.name}:remote/{remote.name}",
                detail={"outcome": outcome},
            )
    return remote


def remote_grant_read(
    *, remote: Remote, path: str, tenant: Any = None, actor: Any = None
) -> list[SourceGrant]:
    """Give a managed remote's pull user and token DatastoreReader on ``path`` of the source.

    Both need it: a token's rights are its own ACL AND its user's (pbs-api 4.4).
    """
    if remote.kind != Remote.Kind.MANAGED:
        return []
    grants = []
    auth_ids = [remote.source_userid, remote.auth_id]
    with _client(remote.source_host) as src:
        for auth_id in auth_ids:
            added = _acl_ensure(src, path=path, auth_id=auth_id, role=PULL_ROLE)
            with transaction.atomic():
                grant, created = SourceGrant.objects.get_or_create(
                    remote=remote,
                    path=path,
                    auth_id=auth_id,
                    role=PULL_ROLE,
                    defaults={"tenant": tenant},
                )
                if added or created:
                    audit_record(
                        action="offsite.source_acl_grant",
                        actor=actor,
                        tenant=tenant,
                        target=f"{remote.source_host.name}:{path}",
                        detail={"auth_id": auth_id, "role": PULL_ROLE},
                    )
            grants.append(grant)
    return grants


def remote_revoke_read(*, remote: Remote, path: str, tenant: Any = None, actor: Any = None) -> int:
    """Remove the pull user's/token's grants on ``path`` (deleting a missing entry is fine)."""
    grants = list(remote.source_grants.filter(path=path))
    if not grants or remote.kind != Remote.Kind.MANAGED:
        return 0
    with _client(remote.source_host) as src:
        for grant in grants:
            src.acl_update(path=grant.path, role=grant.role, auth_id=grant.auth_id, delete=True)
    with transaction.atomic():
        SourceGrant.objects.filter(pk__in=[g.pk for g in grants]).delete()
        audit_record(
            action="offsite.source_acl_revoke",
            actor=actor,
            tenant=tenant,
            target=f"{remote.source_host.name}:{path}",
            detail={"auth_ids": [g.auth_id for g in grants]},
        )
    return len(grants)


# --- policies -------------------------------------------------------------------------------


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
    errors: dict[str, str] = {}
    if source_datastore is not None:
        if source_datastore.host_id == target_datastore.host_id:
            errors["target_datastore"] = "the offsite copy must be on another PBS host"
        source_store = source_datastore.name
    else:
        if remote is None or remote.kind != Remote.Kind.EXTERNAL:
            errors["remote"] = "without a source datastore, give an external remote"
        elif remote.pulling_host_id != target_datastore.host_id:
            errors["remote"] = "the remote must be configured on the target datastore's host"
        if not source_store or not SAFE_ID_RE.match(source_store):
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
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
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


def _source_path(policy: OffsitePolicy, tenant: Any = None) -> str:
    if tenant is not None:
        return f"/datastore/{policy.source_store}/{tenant.namespace}".rstrip("/")
    return f"/datastore/{policy.source_store}"


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


# --- privilege pre-check --------------------------------------------------------------------


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


# --- tenants --------------------------------------------------------------------------------


def _tenant_job_ensure(*, membership: TenantOffsite, actor: Any) -> SyncJobRecord:
    policy, tenant = membership.policy, membership.tenant
    if not tenant.namespace:
        raise OffsiteError(f"tenant {tenant.slug} has no namespace yet")
    remote_grant_read(
        remote=policy.remote, path=_source_path(policy, tenant), tenant=tenant, actor=actor
    )
    record = _record_for(policy=policy, membership=membership)
    return sync_job_ensure(record=record, actor=actor)


def tenant_offsite_enable(
    *, tenant: Any, policy: OffsitePolicy, max_depth: int | None = None, actor: Any = None
) -> TenantOffsite:
    """Put a tenant into a policy (its own job for a tenants-scope policy). Safe to re-run."""
    if tenant.datastore_id != policy.source_datastore_id:
        raise ValidationError({"policy": "the policy replicates another datastore"})
    if max_depth is not None:
        sync_options_clean(max_depth=max_depth, remote_ns=tenant.namespace)
    with transaction.atomic():
        membership, created = TenantOffsite.objects.get_or_create(
            tenant=tenant, policy=policy, defaults={"max_depth": max_depth}
        )
        if not created and max_depth is not None and membership.max_depth != max_depth:
            membership.max_depth = max_depth
            membership.save(update_fields=["max_depth"])
        if created:
            audit_record(
                action="offsite.tenant_enable",
                actor=actor,
                tenant=tenant,
                target=f"policy/{policy.pk}",
            )
    if policy.scope == OffsitePolicy.Scope.TENANTS and policy.enabled:
        _tenant_job_ensure(membership=membership, actor=actor)
    return membership


def tenant_offsite_disable(*, tenant: Any, policy: OffsitePolicy, actor: Any = None) -> bool:
    """Take a tenant out of a tenants-scope policy: its job and source grant go, the offsite
    copy already made stays (delete it on the target if wanted)."""
    membership = TenantOffsite.objects.filter(tenant=tenant, policy=policy).first()
    if membership is None:
        return False
    if policy.scope == OffsitePolicy.Scope.DATASTORE:
        raise ValidationError(
            {"policy": "this policy copies the whole datastore; a tenant cannot leave it"}
        )
    _tenant_membership_remove(membership=membership, actor=actor)
    return True


def _tenant_membership_remove(*, membership: TenantOffsite, actor: Any) -> None:
    record = SyncJobRecord.objects.filter(membership=membership).select_related("host").first()
    if record is not None:
        sync_job_remove(record=record, actor=actor)
    policy, tenant = membership.policy, membership.tenant
    if policy.scope == OffsitePolicy.Scope.TENANTS:
        remote_revoke_read(
            remote=policy.remote, path=_source_path(policy, tenant), tenant=tenant, actor=actor
        )
    with transaction.atomic():
        audit_record(
            action="offsite.tenant_remove", actor=actor, tenant=tenant, target=f"policy/{policy.pk}"
        )
        membership.delete()


def tenant_offsite_include(tenant: Any, *, actor: Any = None) -> list[TenantOffsite]:
    """Onboarding hook: include a new tenant in the enabled policies of its datastore.

    Datastore-scope policies already copy it (a membership tracks its staleness); tenants-scope
    policies with auto-include get a tenant job. ``tenant`` is positional so the onboarding
    step can call ``tenant_offsite_include(tenant)``.
    """
    if not tenant.datastore_id:
        return []
    memberships = []
    policies = OffsitePolicy.objects.filter(
        source_datastore_id=tenant.datastore_id, enabled=True
    ).select_related("remote", "target_datastore")
    for policy in policies:
        if policy.scope == OffsitePolicy.Scope.TENANTS and not policy.auto_include_tenants:
            continue
        memberships.append(tenant_offsite_enable(tenant=tenant, policy=policy, actor=actor))
    return memberships


def tenant_offsite_remove(tenant: Any, *, actor: Any = None) -> int:
    """Offboarding hook: delete the tenant's tenant-scoped jobs, their source grants and its
    memberships. Returns how many memberships were removed. Safe to re-run."""
    memberships = list(
        TenantOffsite.objects.filter(tenant=tenant).select_related("policy__remote", "tenant")
    )
    for membership in memberships:
        _tenant_membership_remove(membership=membership, actor=actor)
    return len(memberships)


# --- status and staleness -------------------------------------------------------------------


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
    _stale_alert_sync(membership)
    return membership


def _stale_alert_sync(membership: TenantOffsite) -> None:
    """Open (or keep) the tenant's ``offsite_stale`` alert while the copy is stale, resolve it
    when it has caught up. One condition per offsite target (the alert key)."""
    from alerts.models import Alert
    from alerts.services import alert_raise, alert_resolve

    target = membership.policy.target_datastore
    key = f"{target.host.name}/{target.name}"
    if membership.stale:
        alert_raise(
            tenant=membership.tenant,
            kind=Alert.Kind.OFFSITE_STALE,
            key=key,
            title=f"Offsite copy on {key} is behind",
            message=membership.stale_reason,
            detail={"policy": membership.policy_id},
        )
    else:
        alert_resolve(tenant=membership.tenant, kind=Alert.Kind.OFFSITE_STALE, key=key)


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


# --- drift ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftItem:
    """One difference between the portal's records and a PBS host."""

    host: str
    kind: str  # "remote" | "sync-job" | "pull-token"
    name: str
    problem: str  # "missing" | "differs" | "unexpected"
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "host": self.host,
            "kind": self.kind,
            "name": self.name,
            "problem": self.problem,
            "detail": self.detail,
        }

    def as_finding(self) -> dict[str, Any]:
        """The shape of tenants.drift findings: ``{kind, object, detail, repairable}``.
        Unknown jobs are never repaired (removed) automatically: someone may rely on them."""
        kind = f"offsite_{self.kind.replace('-', '_')}_{self.problem}"
        detail = self.detail or f"The offsite {self.kind} is {self.problem} on PBS."
        return {
            "kind": kind,
            "object": f"{self.host}:{self.name}",
            "detail": detail,
            "repairable": self.problem != "unexpected",
        }


def offsite_drift(host: Any) -> list[DriftItem]:
    """Remotes and sync jobs on ``host`` that differ from the records, read-only.

    Covers: remotes the portal keeps there (missing, address/auth-id/fingerprint differ), its
    sync jobs (missing, config differs), portal-named jobs PBS has but the portal doesn't
    know (``offsite-*``), and, where ``host`` is a source, the pull users' tokens.
    """
    items: list[DriftItem] = []
    remotes = list(Remote.objects.filter(pulling_host=host))
    records = list(
        SyncJobRecord.objects.filter(host=host).select_related(
            "policy__remote", "membership__tenant"
        )
    )
    sources = list(Remote.objects.filter(source_host=host, kind=Remote.Kind.MANAGED))
    if not (remotes or records or sources):
        return items
    with _client(host) as client:
        for remote in remotes:
            actual = pbsops.remote_get(client, remote.name)
            if actual is None:
                items.append(DriftItem(host.name, "remote", remote.name, "missing"))
                continue
            diffs = []
            for key, want in (
                ("host", remote.host),
                ("port", remote.port),
                ("auth-id", remote.auth_id),
                ("fingerprint", remote.fingerprint),
            ):
                have = actual.get(key) or (8007 if key == "port" else "")
                if key == "fingerprint":
                    have = str(have).lower()
                if have != want:
                    diffs.append(f"{key}: {have!r} != {want!r}")
            if diffs:
                items.append(DriftItem(host.name, "remote", remote.name, "differs", "; ".join(diffs)))
        known = {r.job_id for r in records}
        for record in records:
            actual = pbsops.job_get(client, record.job_id)
            if actual is None:
                items.append(DriftItem(host.name, "sync-job", record.job_id, "missing"))
                continue
            wanted = sync_job_wanted(record)
            have = pbsops.job_normalize(actual)
            diffs = [f"{k}: {have[k]!r} != {wanted[k]!r}" for k in wanted if have[k] != wanted[k]]
            if diffs:
                items.append(
                    DriftItem(host.name, "sync-job", record.job_id, "differs", "; ".join(diffs))
                )
        for job in client.sync_job_list():
            job_id = pbsops._kebab(job)["id"]
            if job_id.startswith("offsite-") and job_id not in known:
                items.append(
                    DriftItem(host.name, "sync-job", job_id, "unexpected", "not in the portal")
                )
        for remote in sources:
            try:
                client.token_get(remote.source_userid, PULL_TOKEN_NAME)
            except NotFound:
                items.append(
                    DriftItem(host.name, "pull-token", remote.auth_id, "missing", f"remote {remote}")
                )
    return items


def offsite_repair(host: Any, *, actor: Any = None) -> dict[str, int]:
    """Re-run the idempotent convergence for everything offsite on ``host``: its remotes and
    jobs (as the pulling host) and the pull tokens and grants (as a source). Never deletes."""
    remotes = {
        r.pk: r
        for r in Remote.objects.filter(
            Q(pulling_host=host) | Q(source_host=host, kind=Remote.Kind.MANAGED)
        ).select_related("pulling_host", "source_host")
    }
    for remote in remotes.values():
        remote_ensure(remote=remote, actor=actor)
    records = list(
        SyncJobRecord.objects.filter(host=host).select_related(
            "host", "policy__remote", "membership__tenant"
        )
    )
    for record in records:
        sync_job_ensure(record=record, actor=actor)
    return {"remotes": len(remotes), "jobs": len(records)}
