"""Celery adapters for offsite replication: take ids, load rows, call one service."""

from __future__ import annotations

import logging

from celery import shared_task

from offsite import services
from offsite.models import OffsitePolicy, SyncJobRecord
from pbsclient.errors import PbsConnectionError, ServerError
from tenants.models import PbsHost, Tenant

log = logging.getLogger(__name__)

_TRANSIENT = (PbsConnectionError, ServerError)
_RETRY = {
    "autoretry_for": _TRANSIENT,
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
    "acks_late": True,
}


@shared_task(**_RETRY)
def offsite_status_refresh_host(host_id: int) -> dict[str, int] | None:
    host = PbsHost.objects.filter(pk=host_id, enabled=True).first()
    if host is None:
        return None
    return services.offsite_status_refresh(host=host)


@shared_task
def offsite_status_refresh_all() -> int:
    """Beat entry: one refresh task per pulling host that has offsite jobs or copies."""
    host_ids = set(
        SyncJobRecord.objects.filter(host__enabled=True).values_list("host_id", flat=True)
    ) | set(
        OffsitePolicy.objects.filter(target_datastore__host__enabled=True).values_list(
            "target_datastore__host_id", flat=True
        )
    )
    for host_id in sorted(host_ids):
        offsite_status_refresh_host.delay(host_id)
    return len(host_ids)


@shared_task(**_RETRY)
def offsite_policy_apply(policy_id: int) -> int | None:
    policy = OffsitePolicy.objects.select_related("remote", "target_datastore").filter(
        pk=policy_id
    ).first()
    if policy is None:
        return None
    return len(services.policy_apply(policy=policy))


@shared_task(**{**_RETRY, "max_retries": 2})
def offsite_job_run(record_id: int) -> bool:
    """Run a job now; returns whether it started (the UPID stays in the record, not the result)."""
    record = SyncJobRecord.objects.select_related("host", "membership__tenant").filter(
        pk=record_id
    ).first()
    if record is None:
        return False
    services.sync_job_run(record=record)
    services.sync_status_refresh(host=record.host)
    return True


@shared_task(**_RETRY)
def offsite_tenant_include(tenant_id: int) -> int:
    """After onboarding (or a repair): the tenant joins its datastore's policies."""
    tenant = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.ACTIVE).select_related("datastore").first()
    if tenant is None:
        return 0
    return len(services.tenant_offsite_include(tenant))


@shared_task(**_RETRY)
def offsite_tenant_remove(tenant_id: int) -> int:
    """After offboarding: the tenant's own sync jobs and memberships go."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return services.tenant_offsite_remove(tenant)
