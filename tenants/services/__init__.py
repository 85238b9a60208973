"""Writes for tenants and PBS hosts.

Every service takes keyword-only arguments, validates before it writes, and records staff
actions and PBS mutations in the audit trail in the same transaction as their effect.
Secrets are encrypted at rest (core.crypto) and never logged, audited or enqueued.

The database holds the desired state; PBS is converged to it (tenants.onboarding). A
lifecycle action first commits the new desired state with its audit row, then converges
PBS; if PBS fails part-way, the error says so and a retry (or a drift repair) finishes it."""

from __future__ import annotations

from tenants.services.base import (
    KEEP_FIELDS,
    REGENERATE_SINCE,
    LifecycleError,
    TokenAlreadyRevealed,
)
from tenants.services.drift import (
    pbshost_drift_check,
    pbshost_repair,
    tenant_drift_check,
)
from tenants.services.hosts import (
    REQUIRED_DATASTORE_PRIVILEGES,
    REQUIRED_PRIVILEGES,
    datastore_update,
    pbshost_check,
    pbshost_register,
    pbshost_update,
)
from tenants.services.lifecycle import (
    tenant_resume,
    tenant_retention_update,
    tenant_suspend,
    tenant_writes_set,
)
from tenants.services.restore_tokens import (
    CreatedRestoreToken,
    RestoreTokenError,
    restore_token_create,
    restore_token_max_days,
    restore_token_revoke,
)
from tenants.services.runs import (
    ALLOWED_KIND_STATUSES,
    onboard_kind_for,
    onboarding_runs_expect,
    onboarding_runs_recover,
    tenant_offboard,
    tenant_onboard,
    tenant_onboard_bulk,
    tenant_repair,
)
from tenants.services.tenants import (
    Retention,
    retention_from,
    retention_problems,
    tenant_create,
    tenant_create_request,
    tenant_placement_resolve,
    tenant_update,
    tenant_validate,
)
from tenants.services.tokens import (
    tenant_token_rotate,
    token_reveal,
    token_revoke,
    token_secret_expired,
    token_secrets_expire,
)

__all__ = [
    "ALLOWED_KIND_STATUSES",
    "KEEP_FIELDS",
    "REGENERATE_SINCE",
    "REQUIRED_DATASTORE_PRIVILEGES",
    "REQUIRED_PRIVILEGES",
    "CreatedRestoreToken",
    "LifecycleError",
    "RestoreTokenError",
    "Retention",
    "TokenAlreadyRevealed",
    "datastore_update",
    "onboard_kind_for",
    "onboarding_runs_expect",
    "onboarding_runs_recover",
    "pbshost_check",
    "pbshost_drift_check",
    "pbshost_register",
    "pbshost_repair",
    "pbshost_update",
    "restore_token_create",
    "restore_token_max_days",
    "restore_token_revoke",
    "retention_from",
    "retention_problems",
    "tenant_create",
    "tenant_create_request",
    "tenant_drift_check",
    "tenant_offboard",
    "tenant_onboard",
    "tenant_onboard_bulk",
    "tenant_placement_resolve",
    "tenant_repair",
    "tenant_resume",
    "tenant_retention_update",
    "tenant_suspend",
    "tenant_token_rotate",
    "tenant_update",
    "tenant_validate",
    "tenant_writes_set",
    "token_reveal",
    "token_revoke",
    "token_secret_expired",
    "token_secrets_expire",
]
