"""Reads for the client self-service pages: live backups from PBS (cached briefly),
connection details, restore tokens.

Everything takes the tenant from ``request.tenant`` (set by accounts.permissions), never
from the URL, so a client can only ever ask about its own tenant.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db.models import F, QuerySet
from django.utils import timezone

from pbsclient.errors import NotFound, PbsError
from tenants.models import Tenant, TenantToken
from tenants.naming import RESTORE_TOKEN_PREFIX, stored_names
from tenants.pbs import client_for_host

logger = logging.getLogger(__name__)

BACKUPS_CACHE_SECONDS = 60
SECRET_PLACEHOLDER = "<token secret>"  # noqa: S105 (a visible placeholder, not a secret)


def backups_cache_key(tenant_id: int) -> str:
    return f"selfservice:backups:v1:{tenant_id}"


@dataclass(frozen=True)
class BackupGroupRow:
    """One backup group (VM, container or host) of the tenant, newest snapshot first."""

    namespace: str
    backup_type: str
    backup_id: str
    last_backup: datetime
    snapshot_count: int
    newest_size: int | None
    last_verification: str | None  # "ok" / "failed" of the newest verified snapshot
    last_verified_at: datetime | None
    newest_verified: bool


@dataclass(frozen=True)
class TenantBackups:
    groups: list[BackupGroupRow]
    fetched_at: datetime
    error: str = ""  # set when PBS could not be read; groups is then empty
    cached: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


def _in_tenant(ns: str, root: str) -> bool:
    return ns == root or ns.startswith(root + "/")


def _epoch(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _fetch_groups(tenant: Tenant) -> list[BackupGroupRow]:
    """Read the tenant's namespace tree and its snapshots from PBS (metering token)."""
    store = tenant.datastore.name
    root = tenant.namespace
    rows: list[BackupGroupRow] = []
    with client_for_host(tenant.host, purpose="metering") as client:
        namespaces = {root}
        namespaces.update(n.ns for n in client.namespace_list(store, parent=root))
        # Defence in depth: never report a namespace outside the tenant's, whatever PBS said.
        for ns in sorted(n for n in namespaces if _in_tenant(n, root)):
            by_group: dict[tuple[str, str], list[Any]] = {}
            for snap in client.snapshot_list(store, ns=ns):
                by_group.setdefault((snap.backup_type, snap.backup_id), []).append(snap)
            for (backup_type, backup_id), snaps in by_group.items():
                snaps.sort(key=lambda s: s.backup_time, reverse=True)
                newest = snaps[0]
                verified = next((s for s in snaps if s.verification_state), None)
                rows.append(
                    BackupGroupRow(
                        namespace=ns,
                        backup_type=backup_type,
                        backup_id=backup_id,
                        last_backup=_epoch(newest.backup_time),
                        snapshot_count=len(snaps),
                        newest_size=newest.size,
                        last_verification=verified.verification_state if verified else None,
                        last_verified_at=_epoch(verified.backup_time) if verified else None,
                        newest_verified=bool(newest.verification_state),
                    )
                )
    rows.sort(key=lambda r: (r.namespace, r.backup_type, r.backup_id))
    return rows


def _cache_get(key: str) -> Any:
    try:
        return cache.get(key)
    except Exception:  # a cache outage must not take the page down; read PBS instead
        logger.warning("cache unavailable for %s", key)
        return None


def _cache_set(key: str, value: Any) -> None:
    try:
        cache.set(key, value, BACKUPS_CACHE_SECONDS)
    except Exception:
        logger.warning("cache unavailable for %s", key)


def tenant_backups(*, tenant: Tenant, refresh: bool = False) -> TenantBackups:
    """The tenant's backup groups, live from PBS, cached per tenant for a minute.

    Failures are not cached (the next page view tries again) and come back as a message,
    not an exception: the page stays usable when PBS is down.
    """
    if not (tenant.host_id and tenant.datastore_id and tenant.namespace):
        return TenantBackups(
            groups=[], fetched_at=timezone.now(), error="Your backup space is not set up yet."
        )
    key = backups_cache_key(tenant.pk)
    if not refresh:
        hit = _cache_get(key)
        if hit is not None:
            return TenantBackups(
                groups=[BackupGroupRow(**row) for row in hit["groups"]],
                fetched_at=hit["fetched_at"],
                cached=True,
            )
    try:
        groups = _fetch_groups(tenant)
    except NotFound:
        groups = []  # namespace not there (yet): simply no backups
    except PbsError as exc:
        logger.warning("backups of tenant %s unreadable: %s", tenant.pk, type(exc).__name__)
        return TenantBackups(
            groups=[],
            fetched_at=timezone.now(),
            error=(
                "The backup server cannot be reached right now, so your backups cannot be "
                "listed. Your backups are not affected; please try again in a few minutes."
            ),
        )
    fetched_at = timezone.now()
    _cache_set(key, {"groups": [asdict(g) for g in groups], "fetched_at": fetched_at})
    return TenantBackups(groups=groups, fetched_at=fetched_at)


# --- connection details ---------------------------------------------------------


@dataclass(frozen=True)
class ConnectionDetails:
    """What a PBS client's connection screen asks for, plus ready-to-paste commands."""

    url: str
    server: str
    port: int
    fingerprint: str
    datastore: str
    namespace: str
    auth_id: str
    repository: str
    client_commands: str
    pvesm_command: str


def _server_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 8007


def connection_details(*, tenant: Tenant) -> ConnectionDetails | None:
    """Connection data for the tenant's backup token, or None while not provisioned."""
    if not (tenant.host_id and tenant.datastore_id and tenant.namespace and tenant.pbs_userid):
        return None
    host = tenant.host
    server, port = _server_and_port(host.url)
    store = tenant.datastore.name
    backup = (
        TenantToken.objects.filter(
            tenant=tenant, purpose=TenantToken.Purpose.BACKUP, revoked_at__isnull=True
        )
        .order_by("-created_at")
        .values_list("tokenid", flat=True)
        .first()
    )
    auth_id = backup or stored_names(tenant).backup_tokenid
    host_part = f"[{server}]" if ":" in server else server
    repository = f"{auth_id}@{host_part}:{port}:{store}"
    fingerprint = host.fingerprint
    q = shlex.quote
    client_lines = [
        f"export PBS_REPOSITORY={q(repository)}",
        f"export PBS_PASSWORD={q(SECRET_PLACEHOLDER)}",
    ]
    if fingerprint:
        client_lines.append(f"export PBS_FINGERPRINT={q(fingerprint)}")
    client_lines += [
        f"proxmox-backup-client snapshot list --ns {q(tenant.namespace)}",
        f"proxmox-backup-client backup root.pxar:/ --ns {q(tenant.namespace)}",
    ]
    pvesm = [
        f"pvesm add pbs {q('pbs-' + tenant.slug)}",
        f"--server {q(server)}",
        f"--port {port}",
        f"--datastore {q(store)}",
        f"--namespace {q(tenant.namespace)}",
        f"--username {q(auth_id)}",
        f"--password {q(SECRET_PLACEHOLDER)}",
    ]
    if fingerprint:
        pvesm.append(f"--fingerprint {q(fingerprint)}")
    return ConnectionDetails(
        url=host.url.rstrip("/"),
        server=server,
        port=port,
        fingerprint=fingerprint,
        datastore=store,
        namespace=tenant.namespace,
        auth_id=auth_id,
        repository=repository,
        client_commands="\n".join(client_lines),
        pvesm_command=" ".join(pvesm),
    )


# --- restore tokens ---------------------------------------------------------------


def restore_token_state(token: TenantToken, now: datetime | None = None) -> str:
    if token.revoked_at:
        return "revoked"
    if token.expires_at and token.expires_at <= (now or timezone.now()):
        return "expired"
    return "active"


def restore_token_label(token: TenantToken) -> str:
    """The name the client chose (the PBS token name without the ``restore-`` prefix)."""
    return token.name.removeprefix(RESTORE_TOKEN_PREFIX)


def tenant_restore_tokens(*, tenant_id: int, limit: int = 200) -> QuerySet[TenantToken]:
    """The tenant's restore tokens (live first, newest first), one query."""
    return (
        TenantToken.objects.filter(tenant_id=tenant_id, purpose=TenantToken.Purpose.RESTORE)
        .select_related("created_by", "revoked_by")
        .order_by(F("revoked_at").asc(nulls_first=True), "-created_at")[:limit]
    )


@dataclass(frozen=True)
class RestoreTokenRow:
    """A restore token as the token list shows it."""

    pk: int
    label: str
    tokenid: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    state: str


def restore_token_rows(*, tenant_id: int) -> list[RestoreTokenRow]:
    now = timezone.now()
    return [
        RestoreTokenRow(
            pk=token.pk,
            label=restore_token_label(token),
            tokenid=token.tokenid,
            created_at=token.created_at,
            created_by=token.created_by.get_username() if token.created_by else "",
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
            state=restore_token_state(token, now),
        )
        for token in tenant_restore_tokens(tenant_id=tenant_id)
    ]
