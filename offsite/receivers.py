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
