"""The onboarding engine: runs of check-before-create steps that converge PBS to the tenant.

One engine drives three kinds of run (OnboardingRun.kind):

- ``onboard``: user, namespace, user ACL, backup token, token ACL, prune job, verify.
- ``repair``: the same steps on an existing tenant (drift repair); the tenant keeps its
  status, so a suspended tenant is converged to "suspended".
- ``offboard``: revoke tokens, remove the user's own ACLs, delete the user, delete the
  prune job, delete or keep the namespace.

Every step first looks at PBS (through a PbsState: live GETs, or a per-batch snapshot),
then writes only what is missing, and records each PBS mutation in the portal (rows and an
audit event) in one transaction. Re-running a run, or a new run after a failure, finishes
the job without duplicates. A run is claimed with a lease (conditional update), so a
redelivered task never runs it twice at the same time.

Errors: transient ones (connection trouble, 5xx) leave the step pending and ask the caller
(the Celery task) to retry later; permanent ones (403, invalid parameter, authentication,
TLS pin) stop the run with the cause and a hint for staff."""

from __future__ import annotations

from tenants.onboarding.base import (
    LIVE_STATUSES,
    OFFBOARD_STEPS,
    ONBOARD_STEPS,
    PRIVS_BACKUP_TOKEN,
    PRIVS_READ,
    PRIVS_WRITE,
    ROLE_BACKUP_TOKEN,
    ROLE_RESTORE_TOKEN,
    ROLE_USER_READ,
    ROLE_USER_WRITE,
    STEP_LABELS,
    RunResult,
    lease,
    steps_for,
)
from tenants.onboarding.context import (
    StepContext,
    context_for,
)
from tenants.onboarding.design import (
    PRUNE_COMPARED,
    PRUNE_DELETABLE,
    desired_prune_job,
    desired_roles,
    expected_backup_token_privileges,
    expected_user_privileges,
    privilege_problems,
    prune_job_diff,
)
from tenants.onboarding.engine import (
    batch_execute,
    run_execute,
    runs_drive,
)
from tenants.onboarding.offboarding import (
    FOREIGN_NOTE,
    OFFBOARD_STEP_FUNCTIONS,
    STEP_FUNCTIONS,
    step_delete_prune_job,
    step_delete_user,
    step_offboard_namespace,
    step_remove_acls,
    step_revoke_tokens,
)
from tenants.onboarding.steps import (
    converge_acl,
    step_backup_token,
    step_namespace,
    step_prune_job,
    step_token_acl,
    step_user,
    step_user_acl,
    step_verify,
    token_renew_secret,
    verify_access,
)

__all__ = [
    "FOREIGN_NOTE",
    "LIVE_STATUSES",
    "OFFBOARD_STEPS",
    "OFFBOARD_STEP_FUNCTIONS",
    "ONBOARD_STEPS",
    "PRIVS_BACKUP_TOKEN",
    "PRIVS_READ",
    "PRIVS_WRITE",
    "PRUNE_COMPARED",
    "PRUNE_DELETABLE",
    "ROLE_BACKUP_TOKEN",
    "ROLE_RESTORE_TOKEN",
    "ROLE_USER_READ",
    "ROLE_USER_WRITE",
    "STEP_FUNCTIONS",
    "STEP_LABELS",
    "RunResult",
    "StepContext",
    "batch_execute",
    "context_for",
    "converge_acl",
    "desired_prune_job",
    "desired_roles",
    "expected_backup_token_privileges",
    "expected_user_privileges",
    "lease",
    "privilege_problems",
    "prune_job_diff",
    "run_execute",
    "runs_drive",
    "step_backup_token",
    "step_delete_prune_job",
    "step_delete_user",
    "step_namespace",
    "step_offboard_namespace",
    "step_prune_job",
    "step_remove_acls",
    "step_revoke_tokens",
    "step_token_acl",
    "step_user",
    "step_user_acl",
    "step_verify",
    "steps_for",
    "token_renew_secret",
    "verify_access",
]
