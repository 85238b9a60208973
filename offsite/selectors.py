"""Offsite replication: reads for pages, the API, other apps and billing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum

from offsite.models import OffsitePolicy, Remote, SyncJobRecord, TenantOffsite


def remote_list() -> QuerySet[Remote]:
    return Remote.objects.select_related("pulling_host", "source_host").annotate(
        policy_count=Count("policies", distinct=True)
    )


def policy_list() -> QuerySet[OffsitePolicy]:
    return OffsitePolicy.objects.select_related(
        "remote__pulling_host",
        "source_datastore__host",
        "target_datastore__host",
    ).annotate(
        member_count=Count("memberships", distinct=True),
        stale_count=Count("memberships", filter=Q(memberships__stale=True), distinct=True),
    )


def job_list() -> QuerySet[SyncJobRecord]:
    return SyncJobRecord.objects.select_related("host", "policy", "membership__tenant")


def membership_list(*, stale_only: bool = False) -> QuerySet[TenantOffsite]:
    qs = TenantOffsite.objects.select_related(
        "tenant", "policy__target_datastore__host", "policy__remote"
    )
    return qs.filter(stale=True) if stale_only else qs


def overview() -> dict[str, Any]:
    """Everything the offsite page shows, in a constant number of queries."""
    return {
        "remotes": list(remote_list()),
        "policies": list(policy_list()),
        "jobs": list(job_list()),
        "stale": list(membership_list(stale_only=True)),
    }


@dataclass(frozen=True)
class TenantOffsiteStatus:
    """How a tenant's offsite copies are doing (for the tenant page and the API)."""

    memberships: list[TenantOffsite]

    @property
    def enabled(self) -> bool:
        return bool(self.memberships)

    @property
    def stale(self) -> bool:
        return any(m.stale for m in self.memberships)


def tenant_offsite_status(tenant: Any) -> TenantOffsiteStatus:
    memberships = list(
        TenantOffsite.objects.filter(tenant=tenant)
        .select_related("policy__target_datastore__host")
        .prefetch_related(Prefetch("job"))
    )
    return TenantOffsiteStatus(memberships=memberships)


def stale_tenant_ids(tenant_ids: list[int] | None = None) -> set[int]:
    """Tenants with a stale offsite copy: one query for a whole tenant list page."""
    qs = TenantOffsite.objects.filter(stale=True)
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    return set(qs.values_list("tenant_id", flat=True))


def host_offsite_summary(host: Any) -> dict[str, int]:
    """For the host page: jobs pulling to this host, failed ones, stale tenants copied here."""
    jobs = SyncJobRecord.objects.filter(host=host).aggregate(
        total=Count("id"),
        failed=Count(
            "id",
            filter=Q(state=SyncJobRecord.State.FAILED)
            | (~Q(last_run_state="") & ~Q(last_run_state="OK")),
        ),
    )
    stale = TenantOffsite.objects.filter(
        Q(policy__target_datastore__host=host) | Q(policy__source_datastore__host=host),
        stale=True,
    ).count()
    return {"jobs": jobs["total"] or 0, "failed_jobs": jobs["failed"] or 0, "stale_tenants": stale}


def offsite_usage_bytes(tenant: Any) -> int | None:
    """Logical bytes of the tenant's offsite copies (sum of snapshot sizes in the target
    namespace, as last measured by the status refresh). None when the tenant has no offsite
    or it was never measured. A billing metric, like the primary per-namespace usage."""
    return offsite_usage_bytes_by_tenant([tenant.pk]).get(tenant.pk)


def offsite_usage_bytes_by_tenant(tenant_ids: list[int]) -> dict[int, int]:
    """``offsite_usage_bytes`` for many tenants (one query per 500): tenant id -> bytes, only
    for tenants with a measured offsite copy. Metering stores it with each daily sample."""
    out: dict[int, int] = {}
    for i in range(0, len(tenant_ids), 500):
        rows = (
            TenantOffsite.objects.filter(tenant_id__in=tenant_ids[i : i + 500], target_logical_bytes__isnull=False)
            .values("tenant_id")
            .annotate(total=Sum("target_logical_bytes"))
        )
        out.update({row["tenant_id"]: row["total"] for row in rows})
    return out


def pulling_host_ids() -> list[int]:
    """Enabled hosts that pull offsite copies: they hold sync jobs or are a policy's target."""
    host_ids = set(SyncJobRecord.objects.filter(host__enabled=True).values_list("host_id", flat=True)) | set(
        OffsitePolicy.objects.filter(target_datastore__host__enabled=True).values_list(
            "target_datastore__host_id", flat=True
        )
    )
    return sorted(host_ids)
