"""Keep replication in step with the tenant lifecycle (tenants.signals.tenant_run_finished)."""

from __future__ import annotations

from typing import Any

from tenants.models import OnboardingRun, Tenant

# Publishing must not hold up the onboarding worker for long when the broker is away; a
# lost include is caught up by the next repair or the policy's apply.
_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


def on_tenant_run_finished(*, tenant_id: int, kind: str, **_: Any) -> None:
    from offsite import tasks
    from offsite.models import OffsitePolicy, TenantOffsite

    if kind == OnboardingRun.Kind.OFFBOARD:
        if TenantOffsite.objects.filter(tenant_id=tenant_id).exists():
            tasks.offsite_tenant_remove.apply_async((tenant_id,), retry_policy=_PUBLISH_RETRY)
        return
    # Onboard and repair: a tenant is in every enabled policy of its datastore (idempotent).
    datastore_id = Tenant.objects.filter(pk=tenant_id).values_list("datastore_id", flat=True).first()
    if OffsitePolicy.objects.filter(source_datastore_id=datastore_id, enabled=True).exists():
        tasks.offsite_tenant_include.apply_async((tenant_id,), retry_policy=_PUBLISH_RETRY)


def on_host_drift_checking(*, host: Any, **_: Any) -> list[dict[str, Any]]:
    """Remotes, sync jobs and pull tokens on the host, in the host drift table."""
    from offsite import services

    return [
        {
            "kind": f"offsite {item.kind}",
            "object": item.name,
            "detail": f"{item.problem}: {item.detail}" if item.detail else item.problem,
            # What the portal keeps is re-created; an unknown portal-named job is left to staff.
            "repairable": item.problem != "unexpected",
            "source": "offsite",
        }
        for item in services.offsite_drift(host)
    ]


def on_host_repair_requested(*, host: Any, actor: Any = None, **_: Any) -> dict[str, int]:
    from offsite import services

    return services.offsite_repair(host, actor=actor)
