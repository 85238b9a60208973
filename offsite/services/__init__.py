"""Offsite replication: writes. Every PBS change is check-before-create and safe to re-run.

Entry points other apps call:
- ``tenant_offsite_include(tenant)`` from onboarding: puts the tenant into every enabled
  policy of its datastore (own sync job for ``tenants`` policies with auto-include);
- ``tenant_offsite_remove(tenant)`` from offboarding: deletes its tenant-scoped jobs and the
  pull user's grant on its namespace;
- ``offsite_drift(host)`` from the drift check: remotes and sync jobs that differ from the
  portal's records (``DriftItem.as_finding()`` gives the tenants.drift finding shape), and
  ``offsite_repair(host)`` to converge them again."""

from __future__ import annotations

from offsite.services.base import (
    MAX_NAMESPACE_DEPTH,
    PULL_ROLE,
    PULL_TOKEN_NAME,
    ROOT_AUTH_ID,
    MissingPrivilege,
    OffsiteError,
    PrivilegeMissing,
    log,
    sync_options_clean,
)
from offsite.services.drift import (
    DriftItem,
    offsite_drift,
    offsite_repair,
)
from offsite.services.jobs import (
    sync_job_ensure,
    sync_job_privileges_missing,
    sync_job_remove,
    sync_job_run,
    sync_job_wanted,
)
from offsite.services.memberships import (
    tenant_offsite_disable,
    tenant_offsite_enable,
    tenant_offsite_include,
    tenant_offsite_remove,
)
from offsite.services.policies import (
    policy_apply,
    policy_create,
    policy_update,
)
from offsite.services.remotes import (
    remote_create,
    remote_ensure,
    remote_grant_read,
    remote_revoke_read,
)
from offsite.services.status import (
    membership_staleness_refresh,
    offsite_status_refresh,
    sync_status_refresh,
)

__all__ = [
    "MAX_NAMESPACE_DEPTH",
    "PULL_ROLE",
    "PULL_TOKEN_NAME",
    "ROOT_AUTH_ID",
    "DriftItem",
    "MissingPrivilege",
    "OffsiteError",
    "PrivilegeMissing",
    "log",
    "membership_staleness_refresh",
    "offsite_drift",
    "offsite_repair",
    "offsite_status_refresh",
    "policy_apply",
    "policy_create",
    "policy_update",
    "remote_create",
    "remote_ensure",
    "remote_grant_read",
    "remote_revoke_read",
    "sync_job_ensure",
    "sync_job_privileges_missing",
    "sync_job_remove",
    "sync_job_run",
    "sync_job_wanted",
    "sync_options_clean",
    "sync_status_refresh",
    "tenant_offsite_disable",
    "tenant_offsite_enable",
    "tenant_offsite_include",
    "tenant_offsite_remove",
]
