"""The check every fault scenario ends with: nothing lost, nothing doubled, nothing unowned.

Two independent views must agree:

1. The simulator's own state (read directly, under its lock), compared with the portal's
   database: every PBS user, token, ACL entry, prune job and namespace the portal made
   (users in the portal's realm, anything on the namespace parent) belongs to a tenant,
   nothing is there twice, and every active tenant has all of its objects, working: the
   user enabled, the namespace there, the ACL entries as designed, the prune job with the
   tenant's retention, the effective privileges as designed, and the backup token's stored
   secret accepted by PBS with exactly the backup privilege on the namespace.
2. The product's own drift check (``tenants.services.pbshost_drift_check``), which must
   find nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count

from core.crypto import decrypt_secret
from pbsclient import PbsClient
from pbsclient.errors import PbsError
from pbssim import FaultConfig
from tenants import services
from tenants.models import AclGrant, OnboardingRun, Tenant, TenantToken
from tenants.naming import PORTAL_COMMENT_PREFIX, tenant_names
from tenants.onboarding import (
    LIVE_STATUSES,
    desired_roles,
    expected_backup_token_privileges,
    expected_user_privileges,
)

if TYPE_CHECKING:
    from pbssim import Simulator
    from tenants.models import PbsHost

KEEP_FIELDS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
ONBOARDED = (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)


def _owner(auth_id: str) -> str:
    return auth_id.split("!", 1)[0]


def _duplicates(items: list[Any]) -> list[Any]:
    return sorted(item for item, n in Counter(items).items() if n > 1)


def host_problems(host: PbsHost, sim: Simulator, *, require_secrets: bool = True) -> list[str]:
    """Everything on ``sim`` (the PBS behind ``host``) that contradicts the portal's records."""
    realm_suffix = "@" + settings.PORTAL_PBS_REALM
    parent = settings.PORTAL_NAMESPACE_PARENT.strip("/")
    tenants = list(
        Tenant.objects.filter(host=host).exclude(status=Tenant.Status.OFFBOARDED).select_related("datastore")
    )
    by_userid = {t.pbs_userid: t for t in tenants}
    by_job = {t.prune_job_id: t for t in tenants}
    by_namespace = {(t.datastore.name, t.namespace): t for t in tenants if t.datastore}
    state = sim.state_snapshot()
    problems: list[str] = []

    # --- every portal-made object on PBS belongs to a tenant, and is there once ---------------
    users = {u["userid"]: u for u in state["users"] if u["userid"].endswith(realm_suffix)}
    problems += [f"user {userid} belongs to no tenant" for userid in sorted(set(users) - set(by_userid))]
    problems += [f"user {u} is there twice" for u in _duplicates([u["userid"] for u in state["users"]])]

    tokens = [t for t in state["tokens"] if _owner(t["tokenid"]).endswith(realm_suffix)]
    problems += [f"token {t['tokenid']} belongs to no tenant" for t in tokens if _owner(t["tokenid"]) not in by_userid]
    problems += [f"token {t} is there twice" for t in _duplicates([t["tokenid"] for t in tokens])]

    def portal_made_acl(entry: dict[str, Any]) -> bool:
        parts = entry["path"].split("/")
        on_parent = len(parts) > 3 and parts[1] == "datastore" and parts[3] == parent
        return _owner(entry["ugid"]).endswith(realm_suffix) or on_parent

    acl = [a for a in state["acl"] if portal_made_acl(a)]
    for entry in acl:
        tenant = by_userid.get(_owner(entry["ugid"]))
        if tenant is None or entry["path"] != tenant_names(tenant.slug).acl_path(tenant.datastore.name):
            problems.append(f"ACL {entry['path']} {entry['ugid']} {entry['roleid']} belongs to no tenant")
    problems += [f"ACL {a} is there twice" for a in _duplicates([(a["path"], a["ugid"], a["roleid"]) for a in acl])]

    jobs = [j for j in state["prune_jobs"] if j["id"].startswith("t-") or (j.get("ns") or "").startswith(parent + "/")]
    for job in jobs:
        tenant = by_job.get(job["id"])
        if tenant is None or (job["store"], job.get("ns") or "") != (tenant.datastore.name, tenant.namespace):
            problems.append(f"prune job {job['id']} ({job['store']}:{job.get('ns')}) belongs to no tenant")
    problems += [f"prune job {j} is there twice" for j in _duplicates([j["id"] for j in jobs])]
    problems += [
        f"namespace {store}:{ns} has {n} prune jobs"
        for (store, ns), n in Counter((j["store"], j.get("ns") or "") for j in jobs).items()
        if n > 1
    ]

    for store, namespaces in state["namespaces"].items():
        for ns in namespaces:
            if ns.count("/") == 1 and ns.startswith(parent + "/") and (store, ns) not in by_namespace:
                problems.append(f"namespace {store}:{ns} belongs to no tenant")

    # --- the portal's own records are not doubled ----------------------------------------------
    doubled_tokens = (
        TenantToken.objects.filter(tenant__host=host, revoked_at__isnull=True, purpose=TenantToken.Purpose.BACKUP)
        .values("tenant__slug")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    problems += [f"tenant {row['tenant__slug']} has {row['n']} live backup tokens" for row in doubled_tokens]
    doubled_runs = (
        OnboardingRun.objects.filter(tenant__host=host, status__in=LIVE_STATUSES)
        .values("tenant__slug")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    problems += [f"tenant {row['tenant__slug']} has {row['n']} live runs" for row in doubled_runs]

    # --- every active (or suspended) tenant has all of its objects, working ----------------------
    acl_by_owner: dict[str, set[tuple[str, str, str, bool]]] = {}
    for entry in acl:
        acl_by_owner.setdefault(_owner(entry["ugid"]), set()).add(
            (entry["path"], entry["ugid"], entry["roleid"], bool(entry["propagate"]))
        )
    tokens_by_owner: dict[str, dict[str, dict[str, Any]]] = {}
    for token in tokens:
        tokens_by_owner.setdefault(_owner(token["tokenid"]), {})[token["tokenid"]] = token
    jobs_by_id = {j["id"]: j for j in jobs}
    grants: dict[int, set[tuple[str, str, str, bool]]] = {}
    for grant in AclGrant.objects.filter(tenant__host=host):
        grants.setdefault(grant.tenant_id, set()).add((grant.path, grant.auth_id, grant.role, grant.propagate))
    live_rows: dict[int, list[TenantToken]] = {}
    for row in TenantToken.objects.filter(tenant__host=host, revoked_at__isnull=True):
        live_rows.setdefault(row.tenant_id, []).append(row)

    for tenant in tenants:
        if tenant.status not in ONBOARDED:
            continue
        problems += _tenant_problems(
            tenant, sim, state, users, tokens_by_owner, acl_by_owner, jobs_by_id,
            grants.get(tenant.pk, set()), live_rows.get(tenant.pk, []), require_secrets=require_secrets,
        )  # fmt: skip
    return problems


def _tenant_problems(
    tenant: Tenant,
    sim: Simulator,
    state: dict[str, Any],
    users: dict[str, dict[str, Any]],
    tokens_by_owner: dict[str, dict[str, dict[str, Any]]],
    acl_by_owner: dict[str, set[tuple[str, str, str, bool]]],
    jobs_by_id: dict[str, dict[str, Any]],
    grants: set[tuple[str, str, str, bool]],
    live_rows: list[TenantToken],
    *,
    require_secrets: bool,
) -> list[str]:
    names = tenant_names(tenant.slug)
    store = tenant.datastore.name
    path = names.acl_path(store)
    userid = names.userid
    who = tenant.slug
    problems: list[str] = []

    user = users.get(userid)
    if user is None:
        return [f"{who}: PBS user {userid} is missing"]
    if user.get("enable") is False:
        problems.append(f"{who}: PBS user {userid} is disabled")
    if user.get("expire"):
        problems.append(f"{who}: PBS user {userid} expires ({user['expire']})")
    if not (user.get("comment") or "").startswith(PORTAL_COMMENT_PREFIX):
        problems.append(f"{who}: PBS user {userid} lacks the portal's comment")
    if names.namespace not in state["namespaces"].get(store, []):
        problems.append(f"{who}: namespace {store}:{names.namespace} is missing")

    # ACL entries: exactly the designed roles, propagating, for the user and the backup token;
    # and the portal's AclGrant rows say the same.
    auth_ids = [userid, names.backup_tokenid]
    auth_ids += [r.tokenid for r in live_rows if r.purpose == TenantToken.Purpose.RESTORE]
    expected_acl = {
        (path, auth_id, role, True) for auth_id in auth_ids for role in desired_roles(tenant, auth_id, names)
    }
    have_acl = acl_by_owner.get(userid, set())
    if have_acl != expected_acl:
        missing, extra = sorted(expected_acl - have_acl), sorted(have_acl - expected_acl)
        problems.append(f"{who}: ACL differs: missing {missing}, extra {extra}")
    if grants != have_acl:
        problems.append(f"{who}: AclGrant rows {sorted(grants)} differ from PBS {sorted(have_acl)}")

    # Tokens: PBS has exactly the portal's live tokens; one backup token, enabled as designed.
    pbs_tokens = tokens_by_owner.get(userid, {})
    if set(pbs_tokens) != {row.tokenid for row in live_rows}:
        portal_tokens = sorted(r.tokenid for r in live_rows)
        problems.append(f"{who}: PBS tokens {sorted(pbs_tokens)} != portal tokens {portal_tokens}")
    backup_rows = [r for r in live_rows if r.purpose == TenantToken.Purpose.BACKUP]
    backup = pbs_tokens.get(names.backup_tokenid)
    if backup is None or len(backup_rows) != 1:
        problems.append(f"{who}: backup token missing (PBS: {backup is not None}, portal rows: {len(backup_rows)})")
    elif (backup.get("enable") is not False) != tenant.writes_allowed:
        problems.append(f"{who}: backup token enable={backup.get('enable')} but writes_allowed={tenant.writes_allowed}")

    # Effective privileges as PBS resolves them.
    user_privs = set(sim.lookup_privs(userid, path))
    if user_privs != set(expected_user_privileges(tenant)):
        problems.append(f"{who}: user privileges {sorted(user_privs)} != {sorted(expected_user_privileges(tenant))}")
    token_expected = set(expected_backup_token_privileges(tenant))
    token_privs = set(sim.lookup_privs(names.backup_tokenid, path))
    if token_privs != token_expected:
        problems.append(f"{who}: backup token privileges {sorted(token_privs)} != {sorted(token_expected)}")

    # The stored secret works: PBS accepts it and shows the backup privilege on the namespace.
    if backup_rows and backup_rows[0].secret_enc:
        secret = decrypt_secret(backup_rows[0].secret_enc)
        try:
            with PbsClient(
                base_url="https://pbs.test:8007", token_id=names.backup_tokenid, token_secret=secret,
                transport=sim.transport(),
            ) as client:  # fmt: skip
                perms = client.permissions_get(path=path)
        except PbsError as exc:
            problems.append(f"{who}: the stored backup token secret does not work: {exc}")
        else:
            if set(perms.get(path, {})) != token_expected:
                problems.append(f"{who}: the backup token sees {perms} on {path}, expected {sorted(token_expected)}")
    elif require_secrets and backup_rows:
        problems.append(f"{who}: the backup token's secret was never stored (it cannot be handed out)")

    # Retention: the prune job exists with the tenant's schedule and keep-* values.
    job = jobs_by_id.get(names.prune_job_id)
    if job is None:
        problems.append(f"{who}: prune job {names.prune_job_id} is missing")
    else:
        want = {
            "store": store, "ns": names.namespace, "schedule": tenant.schedule,
            **{f.replace("_", "-"): getattr(tenant, f) for f in KEEP_FIELDS},
        }  # fmt: skip
        have = {key: job.get(key) for key in want}
        if have != want or job.get("disable"):
            problems.append(f"{who}: prune job {names.prune_job_id} is {job}, expected {want}")
    return problems


def assert_consistent(*pairs: tuple[PbsHost, Simulator], require_secrets: bool = True) -> None:
    """Fail with every problem found on every (host, simulator) pair, and with the product's
    drift findings. Faults are switched off first: this is the end of the scenario."""
    problems: list[str] = []
    for host, sim in pairs:
        sim.faults = FaultConfig()
        problems += [f"{host.name}: {p}" for p in host_problems(host, sim, require_secrets=require_secrets)]
        findings = services.pbshost_drift_check(host_id=host.pk)
        problems += [f"{host.name}: drift check: {f}" for f in findings]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
