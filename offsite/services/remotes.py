"""Remotes: the source host seen from a pulling host, its credential and read grants."""

from __future__ import annotations

import contextlib
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from core.actors import actor_or_none
from core.crypto import decrypt_secret, encrypt_secret
from offsite import pbs as pbsops
from offsite.models import Remote, SourceGrant
from offsite.pbsformat import (
    SAFE_ID_RE,
    bounded_id,
    remote_name_for,
)
from offsite.services.base import PULL_ROLE, PULL_TOKEN_NAME, OffsiteError, _check, _client, _host_address
from pbsclient import validation
from pbsclient.errors import AlreadyExists, NotFound, PbsError


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
    if not (3 <= len(name) <= 32 and SAFE_ID_RE.fullmatch(name)):
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
            created_by=actor_or_none(actor),
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
