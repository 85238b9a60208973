"""Work asked for, and work a task was asked to do.

People ask through the pages, the API and the command: ``*_request`` audits the request and
enqueues the task after the commit, the same for every front door. A task then calls the
``*_requested`` function with ids: it loads the row (quietly nothing when it is gone or no
longer applies) and calls the service that owns the work."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from audit.services import audit_record
from offsite.models import OffsitePolicy, SyncJobRecord
from offsite.services.jobs import sync_job_run
from offsite.services.memberships import tenant_offsite_include, tenant_offsite_remove
from offsite.services.policies import policy_apply
from offsite.services.status import offsite_status_refresh, sync_status_refresh
from tenants.models import PbsHost, Tenant


def host_status_refresh_requested(*, host_id: int) -> dict[str, int] | None:
    host = PbsHost.objects.filter(pk=host_id, enabled=True).first()
    return None if host is None else offsite_status_refresh(host=host)


def policy_apply_requested(*, policy_id: int) -> int | None:
    policy = OffsitePolicy.objects.select_related("remote", "target_datastore").filter(pk=policy_id).first()
    return None if policy is None else len(policy_apply(policy=policy))


def job_run_requested(*, record_id: int) -> bool:
    """Run a job now and refresh its host's job status; False when the record is gone."""
    record = SyncJobRecord.objects.select_related("host", "membership__tenant").filter(pk=record_id).first()
    if record is None:
        return False
    sync_job_run(record=record)
    sync_status_refresh(host=record.host)
    return True


def tenant_include_requested(*, tenant_id: int) -> int:
    """After onboarding (or a repair): an active tenant joins its datastore's policies."""
    tenant = Tenant.objects.filter(pk=tenant_id, status=Tenant.Status.ACTIVE).select_related("datastore").first()
    return 0 if tenant is None else len(tenant_offsite_include(tenant))


def tenant_remove_requested(*, tenant_id: int) -> int:
    """After offboarding: the tenant's own sync jobs and memberships go."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    return 0 if tenant is None else tenant_offsite_remove(tenant)


def policy_apply_request(*, policy: OffsitePolicy, actor: Any) -> None:
    """Queue a converge of the policy's remote, grants and jobs on PBS (audited)."""
    from offsite import tasks  # the tasks import this module: resolved at call time

    with transaction.atomic():
        audit_record(action="offsite.policy_apply_request", actor=actor, target=f"policy/{policy.pk}")
        transaction.on_commit(lambda: tasks.offsite_policy_apply.delay(policy.pk))


def sync_job_run_request(*, record: SyncJobRecord, actor: Any) -> None:
    """Queue a run of one sync job now (audited)."""
    from offsite import tasks  # as above

    with transaction.atomic():
        audit_record(
            action="offsite.sync_job_run_request", actor=actor, target=f"{record.host.name}:sync/{record.job_id}"
        )
        transaction.on_commit(lambda: tasks.offsite_job_run.delay(record.pk))


def status_refresh_request(*, actor: Any) -> None:
    """Queue a status refresh of every pulling host (audited)."""
    from offsite import tasks  # as above

    with transaction.atomic():
        audit_record(action="offsite.status_refresh_request", actor=actor, target="offsite")
        transaction.on_commit(tasks.offsite_status_refresh_all.delay)
