"""Drift: differences between what the portal made on PBS and what PBS has now.

``tenant_findings`` compares one tenant with the design (the same desired state the
onboarding steps converge to); ``host_unknown_findings`` lists objects on a host that look
like tenants' but that the portal does not know. Findings are plain dicts (JSON-ready):
``{"kind", "object", "detail", "repairable"}``; repair = a ``repair`` run, which re-runs
the idempotent convergence. Objects the portal does not know are never deleted
automatically: they may hold someone's backups.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from tenants.models import Datastore, PbsHost, Tenant, TenantToken
from tenants.naming import PORTAL_COMMENT_PREFIX, PRUNE_JOB_PREFIX, stored_names, tenant_names
from tenants.onboarding import desired_prune_job, desired_roles, prune_job_diff
from tenants.pbsstate import PbsState

ONBOARDED = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def finding(kind: str, obj: str, detail: str, *, repairable: bool = True, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "object": obj, "detail": detail, "repairable": repairable, **extra}


def tenant_findings(tenant: Tenant, state: PbsState) -> list[dict[str, Any]]:
    """Everything about ``tenant`` that differs from the design on its PBS host."""
    if tenant.datastore is None:
        return []
    names = stored_names(tenant)
    store = tenant.datastore.name
    path = names.acl_path(store)
    userid = names.userid
    found: list[dict[str, Any]] = []

    if tenant.status == Tenant.Status.OFFBOARDED:
        if state.user(userid) is not None:
            found.append(
                finding("offboarded_user_exists", userid, "The user of an offboarded tenant is back on PBS.",
                        repairable=False)
            )  # fmt: skip
        return found
    if tenant.status not in ONBOARDED:
        return found

    user = state.user(userid)
    if user is None:
        found.append(finding("user_missing", userid, "The PBS user was deleted outside the portal."))
    else:
        if not user.enable:
            found.append(finding("user_disabled", userid, "The PBS user was disabled outside the portal."))
        if user.expire is not None and user.expire <= int(timezone.now().timestamp()):
            found.append(finding("user_expired", userid, "The PBS user has expired."))

    if not state.namespace_exists(store, names.namespace):
        found.append(finding("namespace_missing", f"{store}:{names.namespace}", "The namespace is missing."))

    live_tokens = {
        row.name: row
        for row in TenantToken.objects.filter(tenant=tenant, revoked_at__isnull=True).only(
            "name", "tokenid", "purpose", "enabled"
        )
    }
    pbs_tokens = {token.token_name: token for token in state.tokens(userid)} if user else {}
    for name, row in live_tokens.items():
        token = pbs_tokens.get(name)
        if token is None:
            found.append(
                finding(
                    "token_missing", row.tokenid, "The token is gone from PBS.",
                    # A backup token is re-created by repair (new secret, shown once);
                    # a restore token is the customer's to re-create.
                    repairable=row.purpose == TenantToken.Purpose.BACKUP,
                )
            )  # fmt: skip
        elif row.purpose == TenantToken.Purpose.BACKUP and token.enable != tenant.writes_allowed:
            state_word = "enabled" if token.enable else "disabled"
            found.append(finding("token_state", row.tokenid, f"The backup token is {state_word} on PBS."))
    for name, token in sorted(pbs_tokens.items()):
        if name not in live_tokens:
            found.append(
                finding("token_unknown", token.tokenid, "PBS has a token of this tenant's user that "
                        "the portal did not make (or revoked).", repairable=False)
            )  # fmt: skip

    entries = state.acl_entries(path)
    by_auth: dict[str, set[str]] = {}
    for entry in entries:
        by_auth.setdefault(entry.ugid, set()).add(entry.roleid)
    wanted_auth = {userid} | {row.tokenid for row in live_tokens.values() if row.name in pbs_tokens}
    for auth_id in sorted(wanted_auth):
        want = desired_roles(tenant, auth_id, names)
        have = by_auth.get(auth_id, set())
        for role in sorted(want - have):
            found.append(finding("acl_missing", f"{path} {auth_id} {role}", "An ACL entry is missing."))
        for role in sorted(have - want):
            found.append(finding("acl_extra", f"{path} {auth_id} {role}", "An ACL entry grants more "
                                 "than the design (e.g. backups while suspended)."))  # fmt: skip
    for auth_id in sorted(set(by_auth) - wanted_auth):
        own = auth_id == userid or auth_id.startswith(userid + "!")
        found.append(
            finding(
                "acl_foreign", f"{path} {auth_id} {', '.join(sorted(by_auth[auth_id]))}",
                "Someone else has access to this tenant's namespace." if not own
                else "An ACL entry for a token the portal does not know.",
                repairable=False,
            )
        )  # fmt: skip

    job = state.prune_job(names.prune_job_id)
    desired = desired_prune_job(tenant, names, store)
    if job is None:
        found.append(finding("prune_job_missing", names.prune_job_id, "The retention job was deleted."))
    else:
        changes, deletes = prune_job_diff(job, desired)
        if changes or deletes:
            found.append(
                finding(
                    "prune_job_differs", names.prune_job_id,
                    "The retention job was changed outside the portal: "
                    + ", ".join(sorted([*changes, *deletes])) + ".",
                )
            )  # fmt: skip
    return found


def host_unknown_findings(host: PbsHost, state: PbsState) -> list[dict[str, Any]]:
    """Users, namespaces and prune jobs on ``host`` that look like a tenant's but that no
    portal tenant owns."""
    tenants = list(
        Tenant.objects.filter(host=host).only("slug", "namespace", "pbs_userid", "prune_job_id", "datastore_id")
    )
    names = [stored_names(t) for t in tenants]
    known_users = {n.userid for n in names}
    known_jobs = {n.prune_job_id for n in names}
    # Where tenants live: the current settings for new ones, and whatever existing tenants were
    # created with (a changed PORTAL_PBS_REALM or PORTAL_NAMESPACE_PARENT renames nothing).
    current = tenant_names("x")
    parents = sorted(p for p in {current.parent, *(n.parent for n in names)} if p)
    realms = {current.realm, *(n.realm for n in names)}
    stores = list(Datastore.objects.filter(host=host).only("id", "name"))
    known_ns = {(t.datastore_id, t.namespace) for t in tenants}
    found: list[dict[str, Any]] = []

    parent_paths = [f"/datastore/{store.name}/{parent}/" for store in stores for parent in parents]
    users_with_acl = {
        entry.ugid.split("!", 1)[0]
        for entry in state.all_acl_entries()
        if any(entry.path.startswith(prefix) for prefix in parent_paths)
    }
    for user in state.all_users():
        if user.userid in known_users or user.userid.rsplit("@", 1)[-1] not in realms:
            continue
        marked = (user.comment or "").startswith(PORTAL_COMMENT_PREFIX)
        if marked or user.userid in users_with_acl:
            found.append(
                finding("unknown_user", user.userid, "A PBS user that looks like a tenant's "
                        "(portal comment or access below the tenants' parent) but no tenant "
                        "owns it.", repairable=False)
            )  # fmt: skip
    for store in stores:
        for ns in sorted({ns for parent in parents for ns in state.namespaces_below(store.name, parent)}):
            if (store.id, ns) not in known_ns:
                found.append(
                    finding("unknown_namespace", f"{store.name}:{ns}", "A namespace below the "
                            "tenants' parent that no tenant owns (backups may be in it).",
                            repairable=False)
                )  # fmt: skip
    for job in state.all_prune_jobs():
        if job.id.startswith(PRUNE_JOB_PREFIX) and job.id not in known_jobs:
            found.append(
                finding("unknown_prune_job", job.id, "A tenant-style prune job that no tenant owns.",
                        repairable=False)
            )  # fmt: skip
    return found
