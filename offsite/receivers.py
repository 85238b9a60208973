"""Keep replication in step with the tenant lifecycle (tenants.signals.tenant_run_finished)."""

from __future__ import annotations

from typing import Any

from tenants.models import OnboardingRun


def on_tenant_run_finished(*, tenant_id: int, kind: str, **_: Any) -> None:
    from offsite import tasks

    if kind == OnboardingRun.Kind.OFFBOARD:
        tasks.offsite_tenant_remove.delay(tenant_id)
    else:
        # Onboard and repair: a tenant is in every policy of its datastore (idempotent).
        tasks.offsite_tenant_include.delay(tenant_id)


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
