"""Reads for tenants and PBS hosts: lists, details, placement and connection details."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from tenants.models import Datastore, OnboardingRun, OnboardingStep, PbsHost, Tenant, TenantToken
from tenants.naming import stored_names

LIVE_RUN_STATUSES = (OnboardingRun.Status.QUEUED, OnboardingRun.Status.RUNNING)
# Tenants that occupy space but have not written backups yet (see placement_candidates).
FRESH_STATUSES = (Tenant.Status.PENDING, Tenant.Status.ONBOARDING)


# --- tenants ------------------------------------------------------------------------------


def tenant_list(
    *,
    search: str = "",
    host_id: int | None = None,
    status: str = "",
    plan_id: int | None = None,
    drift_found: bool = False,
) -> QuerySet[Tenant]:
    """Tenants for the staff list, filtered; one query with its joins (no per-row queries).
    ``drift_found``: only tenants whose last drift check found something."""
    qs = Tenant.objects.select_related("host", "datastore", "plan").only(
        "id", "slug", "name", "status", "namespace", "contact_email", "created_at",
        "writes_blocked", "host__name", "datastore__name", "plan__name", "plan__metric",
    )  # fmt: skip
    search = search.strip()
    if search:
        qs = qs.filter(Q(slug__icontains=search) | Q(name__icontains=search) | Q(contact_email__icontains=search))
    if host_id:
        qs = qs.filter(host_id=host_id)
    if status:
        qs = qs.filter(status=status)
    if plan_id:
        qs = qs.filter(plan_id=plan_id)
    if drift_found:
        qs = qs.filter(drift_checked_at__isnull=False).exclude(drift_findings=[])
    return qs.order_by("slug")


def tenant_get(*, slug: str) -> Tenant:
    return Tenant.objects.select_related("host", "datastore", "plan", "created_by").get(slug=slug)


def tenant_tokens(*, tenant: Tenant, include_revoked: bool = True) -> list[TenantToken]:
    qs = TenantToken.objects.filter(tenant=tenant).select_related("created_by", "revoked_by", "revealed_by")
    if not include_revoked:
        qs = qs.filter(revoked_at__isnull=True)
    return list(qs.order_by("revoked_at", "purpose", "-created_at")[:50])


def tenant_live_backup_token(*, tenant: Tenant) -> TenantToken | None:
    return (
        TenantToken.objects.filter(tenant=tenant, purpose=TenantToken.Purpose.BACKUP, revoked_at__isnull=True)
        .select_related("revealed_by")
        .first()
    )


def tenant_runs(*, tenant: Tenant, limit: int = 10) -> list[OnboardingRun]:
    return list(
        OnboardingRun.objects.filter(tenant=tenant)
        .select_related("created_by")
        .prefetch_related("steps")
        .order_by("-created_at")[:limit]
    )


def tenant_live_run(*, tenant: Tenant) -> OnboardingRun | None:
    return OnboardingRun.objects.filter(tenant=tenant, status__in=LIVE_RUN_STATUSES).first()


def tenant_audit(*, tenant: Tenant, limit: int = 50) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(tenant=tenant).select_related("actor")[:limit])


def onboarding_run_get(*, run_id: int) -> OnboardingRun:
    return (
        OnboardingRun.objects.select_related("tenant__host", "tenant__datastore", "created_by")
        .prefetch_related(Prefetch("steps", queryset=OnboardingStep.objects.order_by("position")))
        .get(pk=run_id)
    )


def onboarding_runs_needing_attention(*, limit: int = 10) -> tuple[int, list[OnboardingRun]]:
    """Runs that need a person: failed ones that are still their tenant's newest run, and live
    ones nobody has worked on for longer than the stale-run limit (the rule the recovery
    uses, ``services.runs._run_is_stale``, as a query). Returns the count and the newest few;
    two queries, whatever the number of tenants."""
    now = timezone.now()
    before = now - timedelta(seconds=settings.PORTAL_ONBOARDING_STALE_SECONDS)
    newer = OnboardingRun.objects.filter(tenant=OuterRef("tenant"), created_at__gt=OuterRef("created_at"))
    failed = Q(status=OnboardingRun.Status.FAILED) & ~Q(Exists(newer))
    unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    idle = (
        Q(created_at__lt=before)
        & (Q(started_at__isnull=True) | Q(started_at__lt=before))
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=before))
    )
    stuck = Q(status__in=LIVE_RUN_STATUSES) & unclaimed & idle
    qs = OnboardingRun.objects.filter(failed | stuck)
    rows = list(
        qs.select_related("tenant").only(
            "id", "status", "kind", "created_at", "started_at", "error", "error_hint", "tenant__slug", "tenant__name"
        ).order_by("-created_at")[:limit]
    )  # fmt: skip
    return qs.count(), rows


def tenant_status_counts() -> dict[str, int]:
    rows = Tenant.objects.values("status").annotate(n=Count("id")).order_by()
    return {row["status"]: row["n"] for row in rows}


# --- hosts and placement --------------------------------------------------------------------


def host_list() -> list[PbsHost]:
    return list(
        PbsHost.objects.annotate(
            tenant_count=Count("tenants", filter=~Q(tenants__status=Tenant.Status.OFFBOARDED), distinct=True)
        )
        .prefetch_related(Prefetch("datastores", queryset=Datastore.objects.order_by("name")))
        .order_by("name")
    )


def host_get(*, name: str) -> PbsHost:
    return PbsHost.objects.prefetch_related(
        Prefetch(
            "datastores",
            queryset=Datastore.objects.annotate(
                tenant_count=Count("tenants", filter=~Q(tenants__status=Tenant.Status.OFFBOARDED))
            ).order_by("name"),
        )
    ).get(name=name)


@dataclass(frozen=True)
class PlacementCandidate:
    datastore: Datastore
    free_bytes: int
    score: int


def placement_candidates(*, host: PbsHost | None = None) -> list[PlacementCandidate]:
    """Datastores a new tenant may go to, best first.

    Policy: the host is enabled, reachable at its last check and its certificate still
    matched; the datastore is enabled and has known capacity. Score = free capacity x
    placement weight, where free capacity is the datastore's avail bytes minus a reserve
    (PORTAL_PLACEMENT_RESERVE_GIB) for every tenant placed there that has not written
    anything yet, so a batch of new tenants spreads instead of piling onto one store.
    """
    reserve = int(settings.PORTAL_PLACEMENT_RESERVE_GIB * 2**30)
    qs = (
        Datastore.objects.select_related("host")
        .filter(
            enabled=True,
            avail_bytes__isnull=False,
            host__enabled=True,
            host__reachable=True,
        )
        .exclude(host__fingerprint_ok=False)
        .annotate(fresh=Count("tenants", filter=Q(tenants__status__in=FRESH_STATUSES)))
    )
    if host is not None:
        qs = qs.filter(host=host)
    candidates = []
    for store in qs:
        free = max(int(store.avail_bytes or 0) - reserve * store.fresh, 0)
        candidates.append(PlacementCandidate(datastore=store, free_bytes=free, score=free * store.placement_weight))
    candidates.sort(key=lambda c: (-c.score, c.datastore.host.name, c.datastore.name))
    return candidates


def placement_choose(*, host: PbsHost | None = None) -> Datastore | None:
    candidates = placement_candidates(host=host)
    if not candidates or candidates[0].score <= 0:
        return None
    return candidates[0].datastore


def datastore_choices() -> list[Datastore]:
    return list(
        Datastore.objects.select_related("host").filter(enabled=True, host__enabled=True).order_by("host__name", "name")
    )


# --- what a customer needs to connect ---------------------------------------------------------


def _server_and_port(host: PbsHost) -> tuple[str, int]:
    if host.public_address:
        address = host.public_address.strip()
        parts = urlsplit(f"//{address}")
        return parts.hostname or address, parts.port or 8007
    parts = urlsplit(host.url)
    return parts.hostname or "", parts.port or 8007


def _bracketed(server: str) -> str:
    try:
        return f"[{server}]" if ipaddress.ip_address(server).version == 6 else server
    except ValueError:
        return server


def connection_details(*, tenant: Tenant, tokenid: str | None = None) -> dict[str, Any] | None:
    """Server, fingerprint, auth id, datastore, namespace and ready-to-paste lines for
    proxmox-backup-client and Proxmox VE (pvesm). The secret is never part of it: the lines
    carry a placeholder the customer replaces with the secret revealed once."""
    if tenant.host is None or tenant.datastore is None:
        return None
    host = tenant.host
    names = stored_names(tenant)
    server, port = _server_and_port(host)
    auth_id = tokenid or names.backup_tokenid
    store = tenant.datastore.name
    namespace = tenant.namespace or names.namespace
    repository = f"{auth_id}@{_bracketed(server)}:{port}:{store}"
    fingerprint = host.fingerprint
    storage_id = f"pbs-{tenant.slug}"
    client_lines = [
        f"export PBS_REPOSITORY='{repository}'",
        *([f"export PBS_FINGERPRINT='{fingerprint}'"] if fingerprint else []),
        "export PBS_PASSWORD='<token secret>'",
        f"proxmox-backup-client backup root.pxar:/ --ns {namespace}",
        f"proxmox-backup-client snapshot list --ns {namespace}",
    ]
    pvesm = (
        f"pvesm add pbs {storage_id} --server {server} --port {port} --datastore {store} "
        f"--namespace {namespace} --username {auth_id}"
        + (f" --fingerprint {fingerprint}" if fingerprint else "")
        + " --password '<token secret>'"
    )
    return {
        "server": server,
        "port": port,
        "fingerprint": fingerprint,
        "auth_id": auth_id,
        "datastore": store,
        "namespace": namespace,
        "repository": repository,
        "storage_id": storage_id,
        "client_commands": "\n".join(client_lines),
        "pvesm_command": pvesm,
    }


def host_ids(*, enabled_only: bool = False) -> list[int]:
    """Ids of the PBS hosts a beat task fans out over."""
    hosts = PbsHost.objects.filter(enabled=True) if enabled_only else PbsHost.objects.all()
    return list(hosts.values_list("pk", flat=True))


def host_exists(host_id: int) -> bool:
    return PbsHost.objects.filter(pk=host_id).exists()
