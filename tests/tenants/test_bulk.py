"""Bulk onboarding: one snapshot of the host's lists per batch, then only writes."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import unquote

import pytest

from pbssim import FaultConfig
from tenants import services
from tenants.models import AclGrant, OnboardingRun, OnboardingStep, PbsHost, Tenant, TenantToken
from tenants.onboarding import RunResult, batch_execute, run_execute, runs_drive
from tenants.pbs import client_for_host
from tests.tenants.conftest import pbs_state

pytestmark = pytest.mark.django_db


def _create_many(sim_host: Any, n: int, prefix: str = "bulk") -> list[Tenant]:
    store = sim_host.datastores.get(name="store1")
    return [services.tenant_create(slug=f"{prefix}{i:03d}", name=f"Bulk {i}", datastore=store) for i in range(n)]


def assert_pbs_matches_portal(sim: Any) -> None:
    """No duplicates and no PBS object without a portal record (and vice versa)."""
    state = pbs_state(sim)
    tenants = {t.pbs_userid: t for t in Tenant.objects.exclude(status=Tenant.Status.OFFBOARDED)}
    users = [u["userid"] for u in state["users"] if u["userid"].endswith("@pbs")]
    assert sorted(users) == sorted(tenants)
    tokens = [t["tokenid"] for t in state["tokens"] if t["tokenid"].split("!")[0] in tenants]
    assert len(tokens) == len(set(tokens))
    assert sorted(tokens) == sorted(
        TenantToken.objects.filter(revoked_at__isnull=True).values_list("tokenid", flat=True)
    )
    acl = sorted((a["path"], a["ugid"], a["roleid"]) for a in state["acl"] if a["ugid"].split("!")[0] in tenants)
    assert acl == sorted(AclGrant.objects.values_list("path", "auth_id", "role"))
    jobs = sorted(j["id"] for j in state["prune_jobs"])
    assert jobs == sorted(t.prune_job_id for t in tenants.values())
    namespaces = sorted(ns for ns in state["namespaces"]["store1"] if ns.startswith("clients/"))
    assert namespaces == sorted(t.namespace for t in tenants.values())


# The exact PBS requests of one tenant's first onboarding (the parent namespace exists):
# six objects in seven writes (the user holds two roles, and an ACL PUT grants one role),
# then one /access/permissions call proves the user's effective privileges; the token's
# follow from them (a token made a moment ago holds only the ACL entries just granted).
ONE_TENANT_REQUESTS = Counter(
    {
        ("POST", "/access/users"): 1,
        ("POST", "/admin/datastore/store1/namespace"): 1,
        ("PUT", "/access/acl"): 3,
        ("POST", "/access/users/{userid}/token/backup"): 1,
        ("POST", "/config/prune"): 1,
        ("GET", "/access/permissions"): 1,
    }
)


def _calls(sim: Any) -> Counter[tuple[str, str]]:
    calls: Counter[tuple[str, str]] = Counter()
    for method, path, _status in sim.request_log:
        path = unquote(path.removeprefix("/api2/json"))
        if path.startswith("/access/users/") and path.endswith("/token/backup"):
            path = "/access/users/{userid}/token/backup"
        calls[(method, path)] += 1
    return calls


def test_bulk_onboarding_costs_exactly_eight_requests_per_tenant(pbs_sim: Any, sim_host: Any, settings: Any) -> None:
    settings.PORTAL_ONBOARDING_BATCH_SIZE = 100
    tenants = _create_many(sim_host, 20)
    runs = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants], enqueue=False)
    pbs_sim.request_log.clear()

    results = batch_execute(run_ids=[r.pk for r in runs])

    assert set(results.values()) == {RunResult.SUCCEEDED}
    # Per tenant the requests of one tenant, and nothing read to prove absence; once per
    # datastore ever, the first namespace is refused (no parent yet) and the parent is made.
    expected = Counter({key: n * 20 for key, n in ONE_TENANT_REQUESTS.items()})
    expected[("POST", "/admin/datastore/store1/namespace")] += 2
    assert _calls(pbs_sim) == expected
    assert sum(expected.values()) == 8 * 20 + 2
    assert_pbs_matches_portal(pbs_sim)


def test_a_single_onboarding_costs_exactly_eight_requests(pbs_sim: Any, sim_host: Any) -> None:
    first, second = _create_many(sim_host, 2, prefix="one")
    run_execute(run_id=services.tenant_onboard(tenant_id=first.pk, enqueue=False)[0].pk)
    run, _ = services.tenant_onboard(tenant_id=second.pk, enqueue=False)
    pbs_sim.request_log.clear()

    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED

    assert _calls(pbs_sim) == ONE_TENANT_REQUESTS
    token = TenantToken.objects.get(tenant=second)
    # The token's proven privileges are exactly what PBS reports for it.
    assert token.effective_privileges == pbs_sim_permissions(pbs_sim, token.tokenid)
    assert token.effective_privileges == {"/datastore/store1/clients/one001": {"Datastore.Backup": True}}


def pbs_sim_permissions(sim: Any, auth_id: str) -> dict[str, dict[str, bool]]:
    """What PBS itself reports for ``auth_id`` (the call the proof saved)."""
    with client_for_host(PbsHost.objects.get()) as client:
        return client.permissions_get(auth_id=auth_id)


def test_a_bulk_repair_reads_each_list_once_per_batch_then_proves(pbs_sim: Any, sim_host: Any, settings: Any) -> None:
    settings.PORTAL_ONBOARDING_BATCH_SIZE = 100
    tenants = _create_many(sim_host, 10)
    onboarding = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants], enqueue=False)
    batch_execute(run_ids=[r.pk for r in onboarding])
    repairs = [services.tenant_repair(tenant_id=t.pk, enqueue=False)[0].pk for t in tenants]
    pbs_sim.request_log.clear()

    assert set(batch_execute(run_ids=repairs).values()) == {RunResult.SUCCEEDED}

    # A converged tenant costs no write: one list each (users with their tokens, ACL,
    # prune jobs, the namespaces below the parent), then two proofs per tenant.
    assert _calls(pbs_sim) == Counter(
        {
            ("GET", "/access/users"): 1,
            ("GET", "/access/acl"): 1,
            ("GET", "/config/prune"): 1,
            ("GET", "/admin/datastore/store1/namespace"): 1,
            ("GET", "/access/permissions"): 2 * 10,
        }
    )


@pytest.mark.slow
def test_bulk_of_200_with_ten_percent_server_errors_ends_all_active_without_duplicates(
    pbs_sim: Any, sim_host: Any, fast_retries: Any
) -> None:
    fast_retries.PORTAL_ONBOARDING_MAX_RETRIES = 20
    tenants = _create_many(sim_host, 200)
    runs = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants], enqueue=False)
    pbs_sim.faults = FaultConfig(error_rate=0.10, seed=7)

    results = runs_drive(run_ids=[r.pk for r in runs], timeout=300, sleep=lambda _s: None)

    pbs_sim.faults = FaultConfig()
    assert Counter(results.values()) == {RunResult.SUCCEEDED: 200}
    assert set(Tenant.objects.values_list("status", flat=True)) == {Tenant.Status.ACTIVE}
    assert OnboardingRun.objects.filter(status="succeeded").count() == 200
    # The faults really reached the steps (beyond the client's own retries of safe calls).
    assert OnboardingStep.objects.filter(attempts__gt=1).count() > 5
    assert_pbs_matches_portal(pbs_sim)
    # Every secret the portal holds is there (lost answers were regenerated).
    assert TenantToken.objects.filter(revoked_at__isnull=True, secret_enc="").count() == 0


def test_placement_spreads_new_tenants_over_the_datastores(sim_host: Any, settings: Any) -> None:
    settings.PORTAL_PLACEMENT_RESERVE_GIB = 1024  # 1 TiB per fresh tenant
    placed = Counter()
    for i in range(6):
        tenant = services.tenant_create(slug=f"spread{i}", name=f"Spread {i}", host=sim_host)
        placed[tenant.datastore.name] += 1
    # store2 has 6 TiB free, store1 3 TiB: most go to store2, some to store1.
    assert placed["store2"] > placed["store1"] > 0


def test_placement_skips_disabled_unreachable_and_mismatched_hosts(sim_host: Any) -> None:
    from tenants.selectors import placement_choose

    assert placement_choose() is not None
    sim_host.fingerprint_ok = False
    sim_host.save()
    assert placement_choose() is None
    sim_host.fingerprint_ok = True
    sim_host.reachable = False
    sim_host.save()
    assert placement_choose() is None
    sim_host.reachable = True
    sim_host.enabled = False
    sim_host.save()
    assert placement_choose() is None
