"""Onboarding runs: the steps of each kind, the result of a run, the lease a worker holds."""

from __future__ import annotations

import enum
from datetime import timedelta

from django.conf import settings

from tenants.models import OnboardingRun

ONBOARD_STEPS = ("user", "namespace", "user_acl", "backup_token", "token_acl", "prune_job", "verify")


OFFBOARD_STEPS = ("revoke_tokens", "remove_acls", "delete_user", "delete_prune_job", "namespace")


STEP_LABELS = {
    "user": "PBS user",
    "namespace": "Namespace",
    "user_acl": "User permissions",
    "backup_token": "Backup token",
    "token_acl": "Token permissions",
    "prune_job": "Retention (prune job)",
    "verify": "Verify effective privileges",
    "revoke_tokens": "Revoke tokens",
    "remove_acls": "Remove the user's ACLs",
    "delete_user": "Delete PBS user",
    "delete_prune_job": "Delete prune job",
}


LIVE_STATUSES = (OnboardingRun.Status.QUEUED, OnboardingRun.Status.RUNNING)


def lease() -> timedelta:
    """How long a worker holds a run it executes (PORTAL_ONBOARDING_LEASE_SECONDS): longer
    than any single step can take, short enough that a crashed worker's run is picked up
    again soon (by the stale-run recovery on beat)."""
    return timedelta(seconds=settings.PORTAL_ONBOARDING_LEASE_SECONDS)


# Roles of the tenant design (docs/tenants.md).
ROLE_USER_READ = "DatastoreReader"


ROLE_USER_WRITE = "DatastorePowerUser"


ROLE_BACKUP_TOKEN = "DatastoreBackup"  # noqa: S105 (a role name)


ROLE_RESTORE_TOKEN = "DatastoreReader"  # noqa: S105 (a role name)


PRIVS_READ = frozenset({"Datastore.Audit", "Datastore.Verify", "Datastore.Read"})


PRIVS_WRITE = frozenset({"Datastore.Backup", "Datastore.Prune"})


PRIVS_BACKUP_TOKEN = frozenset({"Datastore.Backup"})


def steps_for(kind: str) -> tuple[str, ...]:
    return OFFBOARD_STEPS if kind == OnboardingRun.Kind.OFFBOARD else ONBOARD_STEPS


class RunResult(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY = "retry"  # a transient error: run again later
    BUSY = "busy"  # another worker holds the lease
    GONE = "gone"  # no such run, or it is finished already
