"""Celery adapters for offsite replication: take ids, load rows, call one service."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from core.transient import retry_if_transient
from offsite import selectors
from offsite.services import requests

log = logging.getLogger(__name__)

# Offsite work talks to PBS: transient failures (connection, 5xx) are retried with backoff,
# TLS and fingerprint failures never (core.transient).
_TASK = {"bind": True, "acks_late": True, "max_retries": 5}


@shared_task(**_TASK)
def offsite_status_refresh_host(self: Task, host_id: int) -> dict[str, int] | None:
    with retry_if_transient(self):
        return requests.host_status_refresh_requested(host_id=host_id)


@shared_task
def offsite_status_refresh_all() -> int:
    """Beat entry: one refresh task per pulling host that has offsite jobs or copies."""
    host_ids = selectors.pulling_host_ids()
    for host_id in host_ids:
        offsite_status_refresh_host.delay(host_id)
    return len(host_ids)


@shared_task(**_TASK)
def offsite_policy_apply(self: Task, policy_id: int) -> int | None:
    with retry_if_transient(self):
        return requests.policy_apply_requested(policy_id=policy_id)


@shared_task(**{**_TASK, "max_retries": 2})
def offsite_job_run(self: Task, record_id: int) -> bool:
    """Run a job now; returns whether it started (the UPID stays in the record, not the result)."""
    with retry_if_transient(self):
        return requests.job_run_requested(record_id=record_id)


@shared_task(**_TASK)
def offsite_tenant_include(self: Task, tenant_id: int) -> int:
    """After onboarding (or a repair): the tenant joins its datastore's policies."""
    with retry_if_transient(self):
        return requests.tenant_include_requested(tenant_id=tenant_id)


@shared_task(**_TASK)
def offsite_tenant_remove(self: Task, tenant_id: int) -> int:
    """After offboarding: the tenant's own sync jobs and memberships go."""
    with retry_if_transient(self):
        return requests.tenant_remove_requested(tenant_id=tenant_id)
