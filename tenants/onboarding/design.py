"""What a tenant should look like on PBS: roles, privileges, its prune job, and how to compare."""

from __future__ import annotations

from typing import Any

from pbsclient.models import PruneJob
from tenants.models import Tenant
from tenants.naming import TenantNames
from tenants.onboarding.base import (
    PRIVS_BACKUP_TOKEN,
    PRIVS_READ,
    PRIVS_WRITE,
    ROLE_BACKUP_TOKEN,
    ROLE_RESTORE_TOKEN,
    ROLE_USER_READ,
    ROLE_USER_WRITE,
)


def desired_roles(tenant: Tenant, auth_id: str, names: TenantNames) -> set[str]:
    """Roles ``auth_id`` should hold on the tenant's namespace path, given its status."""
    writes = tenant.writes_allowed
    if auth_id == names.userid:
        return {ROLE_USER_READ, ROLE_USER_WRITE} if writes else {ROLE_USER_READ}
    if auth_id == names.backup_tokenid:
        return {ROLE_BACKUP_TOKEN} if writes else set()
    return {ROLE_RESTORE_TOKEN}


def expected_user_privileges(tenant: Tenant) -> frozenset[str]:
    return PRIVS_READ | PRIVS_WRITE if tenant.writes_allowed else PRIVS_READ


def expected_backup_token_privileges(tenant: Tenant) -> frozenset[str]:
    return PRIVS_BACKUP_TOKEN if tenant.writes_allowed else frozenset()


def desired_prune_job(tenant: Tenant, names: TenantNames, store: str) -> PruneJob:
    return PruneJob(
        id=names.prune_job_id,
        store=store,
        schedule=tenant.schedule,
        ns=names.namespace,
        max_depth=None,  # the tenant's whole subtree
        keep_last=tenant.keep_last,
        keep_hourly=tenant.keep_hourly,
        keep_daily=tenant.keep_daily,
        keep_weekly=tenant.keep_weekly,
        keep_monthly=tenant.keep_monthly,
        keep_yearly=tenant.keep_yearly,
        comment=names.user_comment,
        disable=False,
    )


PRUNE_COMPARED = (
    "store", "schedule", "ns", "max_depth", "keep_last", "keep_hourly", "keep_daily",
    "keep_weekly", "keep_monthly", "keep_yearly", "disable",
)  # fmt: skip


PRUNE_DELETABLE = {
    "max_depth", "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly",
    "keep_yearly",
}  # fmt: skip


def prune_job_diff(current: PruneJob, desired: PruneJob) -> tuple[dict[str, Any], list[str]]:
    """(fields to set, fields to delete) that turn ``current`` into ``desired``."""
    changes: dict[str, Any] = {}
    deletes: list[str] = []
    for name in PRUNE_COMPARED:
        have, want = getattr(current, name), getattr(desired, name)
        if name == "ns":
            have, want = have or "", want or ""
        if have == want:
            continue
        if want is None and name in PRUNE_DELETABLE:
            deletes.append(name)
        else:
            changes[name] = want
    return changes, deletes


def privilege_problems(
    perms: dict[str, dict[str, bool]], *, path: str, expected: frozenset[str], who: str
) -> list[str]:
    """Compare /access/permissions output with what ``who`` should have: exactly
    ``expected`` on ``path`` (propagating), and nothing on any path outside it."""
    problems: list[str] = []
    here = perms.get(path, {})
    have = set(here)
    missing = expected - have
    extra = have - expected
    if missing:
        problems.append(f"{who} lacks {', '.join(sorted(missing))} on {path}")
    if extra:
        problems.append(f"{who} has more than intended on {path}: {', '.join(sorted(extra))}")
    not_propagating = sorted(priv for priv in expected & have if not here.get(priv))
    if not_propagating:
        problems.append(f"{who} has {', '.join(not_propagating)} on {path} without propagation")
    for other, privs in sorted(perms.items()):
        inside = other == path or other.startswith(path + "/")
        if privs and not inside:
            problems.append(f"{who} has {', '.join(sorted(privs))} outside its namespace, on {other}")
    return problems
