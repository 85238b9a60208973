"""Bulk onboarding: one snapshot of the host's lists per batch, then only writes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pbssim import FaultConfig
from tenants import services
from tenants.models import AclGrant, OnboardingRun, OnboardingStep, Tenant, TenantToken
from tenants.onboarding import RunResult, batch_execute, runs_drive
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


def test_bulk_reads_each_list_once_per_batch_then_only_writes(pbs_sim: Any, sim_host: Any, settings: Any) -> None:
    settings.PORTAL_ONBOARDING_BATCH_SIZE = 100
    tenants = _create_many(sim_host, 20)
    runs = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants], enqueue=False)
    pbs_sim.request_log.clear()

    results = batch_execute(run_ids=[r.pk for r in runs])

    assert set(results.values()) == {RunResult.SUCCEEDED}
    calls = Counter((method, path.removeprefix("/api2/json")) for method, path, _status in pbs_sim.request_log)
    gets = {key: n for key, n in calls.items() if key[0] == "GET"}
    writes = sum(n for key, n in calls.items() if key[0] != "GET")
    assert gets[("GET", "/access/users")] == 1
    assert gets[("GET", "/access/acl")] == 1
    assert gets[("GET", "/config/prune")] == 1
    assert gets[("GET", "/admin/datastore/store1/namespace")] <= 2
    # Per tenant: user, namespace, 2 user ACLs, token, token ACL, prune job = 7 writes;
    # plus, once per datastore ever, the refused first namespace and the parent namespace.
    assert writes == 7 * 20 + 2
    permission_reads = sum(n for key, n in gets.items() if key[1] == "/access/permissions")
    assert permission_reads == 2 * 20  # verify: the user and the backup token
    assert sum(gets.values()) == permission_reads + 1 + 1 + 1 + gets[("GET", "/admin/datastore/store1/namespace")]
    assert_pbs_matches_portal(pbs_sim)


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
