"""Onboarding on the real stack: a Celery worker process, Redis, PostgreSQL, and the PBS
simulator over HTTPS with a pinned certificate (the worker talks to it like to a real PBS).

Faults are injected into the simulator inside this process, so they hit exactly the PBS
call chosen, whichever process makes it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.db import close_old_connections, connection

from core.crypto import decrypt_secret
from pbsclient import PbsClient
from pbsclient.errors import PbsHttpError
from pbssim import FaultConfig
from tenants import services
from tenants.models import OnboardingRun, Tenant, TenantToken
from tenants.onboarding import ONBOARD_STEPS
from tests.tenants.conftest import pbs_state
from tests.tenants.test_bulk import assert_pbs_matches_portal

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

NS = "clients/{slug}"


def wait_for_runs(run_ids: list[int], timeout: float = 120.0) -> list[OnboardingRun]:
    """Poll the database (shared with the worker) until every run has finished."""
    deadline = time.monotonic() + timeout
    while True:
        runs = list(OnboardingRun.objects.filter(pk__in=run_ids))
        if runs and all(r.status in ("succeeded", "failed") for r in runs) and len(runs) == len(run_ids):
            return runs
        if time.monotonic() > deadline:
            states = Counter(r.status for r in runs)
            pytest.fail(f"runs did not finish in {timeout:.0f} s: {dict(states)}")
        time.sleep(0.2)


@pytest.fixture
def https_host(pbs_sim: Any, pbs_https: Any, pbs_host: Any) -> Any:
    host = pbs_host(pbs_https, name="pbs-tls")
    host = services.pbshost_check(host_id=host.pk)
    assert host.reachable
    assert host.fingerprint_ok
    return host


def _create(host: Any, slug: str, store: str = "store1") -> Tenant:
    return services.tenant_create(slug=slug, name=slug.title(), datastore=host.datastores.get(name=store))


def _objects(sim: Any, slug: str) -> dict[str, list[Any]]:
    state = pbs_state(sim)
    userid = f"{slug}@pbs"
    return {
        "users": [u for u in state["users"] if u["userid"] == userid],
        "tokens": [t["tokenid"] for t in state["tokens"] if t["tokenid"].startswith(userid + "!")],
        "acl": sorted((a["path"], a["ugid"], a["roleid"]) for a in state["acl"] if a["ugid"].startswith(userid)),
        "namespaces": [ns for ns in state["namespaces"]["store1"] if ns == NS.format(slug=slug)],
        "jobs": [j["id"] for j in state["prune_jobs"] if j["id"] == f"t-{slug}"],
    }


def _client_as(host: Any, tokenid: str, secret: str) -> PbsClient:
    return PbsClient(base_url=host.url, token_id=tokenid, token_secret=secret, fingerprint=host.fingerprint)


def test_happy_path_on_the_worker_over_https(pbs_sim: Any, https_host: Any, staff_user: Any) -> None:
    tenant = _create(https_host, "acme")
    run, created = services.tenant_onboard(tenant_id=tenant.pk, actor=staff_user)
    assert created

    (run,) = wait_for_runs([run.pk])

    assert run.status == "succeeded", run.error
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    assert [s.outcome for s in run.steps.order_by("position")] == ["created"] * 6 + ["verified"]
    objects = _objects(pbs_sim, "acme")
    assert objects["tokens"] == ["acme@pbs!backup"]
    assert len(objects["acl"]) == 3

    # Reveal once: the secret works over HTTPS, then it is gone from the database.
    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    secret = services.token_reveal(token_id=token.pk, actor=staff_user)
    with pytest.raises(services.TokenAlreadyRevealed):
        services.token_reveal(token_id=token.pk, actor=staff_user)
    token.refresh_from_db()
    assert token.secret_enc == ""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tenants_tenanttoken WHERE secret_enc <> ''")
        assert cursor.fetchone()[0] == 0
    with _client_as(https_host, token.tokenid, secret) as client:
        assert client.permissions_get()["/datastore/store1/clients/acme"] == {"Datastore.Backup": True}


def test_effective_privileges_of_backup_and_restore_tokens(pbs_sim: Any, https_host: Any) -> None:
    acme, other = _create(https_host, "acme"), _create(https_host, "other")
    runs = [services.tenant_onboard(tenant_id=t.pk)[0] for t in (acme, other)]
    assert {r.status for r in wait_for_runs([r.pk for r in runs])} == {"succeeded"}
    for slug in ("acme", "other"):
        pbs_sim.seed_snapshot(store="store1", ns=NS.format(slug=slug), backup_type="vm", backup_id="100",
                              backup_time=1_700_000_000, size=1000, owner=f"{slug}@pbs!backup")  # fmt: skip
    acme.refresh_from_db()  # onboarded by the worker
    backup = TenantToken.objects.get(tenant=acme, purpose="backup", revoked_at__isnull=True)
    backup_secret = services.token_reveal(token_id=backup.pk)
    restore = services.restore_token_create(tenant=acme, name="laptop", days=7, actor=None, keep_secret=True).token
    restore_secret = services.token_reveal(token_id=restore.pk)
    own = "/datastore/store1/clients/acme"

    with _client_as(https_host, backup.tokenid, backup_secret) as client:
        perms = client.permissions_get()
        assert {path: set(privs) for path, privs in perms.items()} == {own: {"Datastore.Backup"}}
        # It may write (Datastore.Backup) but not read others' data, nor prune or make namespaces.
        with pytest.raises(PbsHttpError):
            client.snapshot_list("store1", ns="clients/other")
        with pytest.raises(PbsHttpError):
            client.namespace_create("store1", "x", parent="clients/acme")
    with _client_as(https_host, restore.tokenid, restore_secret) as client:
        perms = client.permissions_get()
        assert {path: set(privs) for path, privs in perms.items()} == {
            own: {"Datastore.Audit", "Datastore.Verify", "Datastore.Read"}
        }
        assert [s.backup_id for s in client.snapshot_list("store1", ns="clients/acme")] == ["100"]
        with pytest.raises(PbsHttpError):
            client.snapshot_list("store1", ns="clients/other")
        with pytest.raises(PbsHttpError):
            client.snapshot_list("store1", ns="clients")
    assert "Datastore.Backup" not in pbs_sim.lookup_privs(restore.tokenid, own)
    assert "Datastore.Prune" not in pbs_sim.lookup_privs(restore.tokenid, own)


WRITES = {
    "user": ("POST", r"^/access/users$", None),
    "namespace": ("POST", r"^/admin/datastore/store1/namespace$", None),
    "user_acl": ("PUT", r"^/access/acl$", None),
    "backup_token": ("POST", r"/token/backup$", None),
    "token_acl": ("PUT", r"^/access/acl$", r"pbs!backup"),
    "prune_job": ("POST", r"^/config/prune$", None),
    "verify": ("GET", r"^/access/permissions$", None),
}


@pytest.mark.parametrize("step", ONBOARD_STEPS)
def test_a_fault_at_each_step_then_a_rerun_finishes_without_duplicates(
    pbs_sim: Any, https_host: Any, step_faults: Any, step: str
) -> None:
    slug = f"f-{step.replace('_', '-')}"
    tenant = _create(https_host, slug)
    method, path, body = WRITES[step]
    faults = step_faults(pbs_sim)
    faults.add(method, path, mode="forbidden", times=1, body=body)

    first, _ = services.tenant_onboard(tenant_id=tenant.pk)
    (first,) = wait_for_runs([first.pk])

    assert first.status == "failed"
    assert first.steps.get(name=step).state == "failed"
    assert first.error_hint, "staff get a hint"
    assert all(s.state == "done" for s in first.steps.filter(position__lt=ONBOARD_STEPS.index(step)))

    rerun, created = services.tenant_onboard(tenant_id=tenant.pk)
    assert created
    (rerun,) = wait_for_runs([rerun.pk])
    assert rerun.status == "succeeded", rerun.error
    outcomes = {s.name: s.outcome for s in rerun.steps.all()}
    for done in ONBOARD_STEPS[: ONBOARD_STEPS.index(step)]:
        if done != "verify":
            assert outcomes[done] == "existed", (done, outcomes)
    objects = _objects(pbs_sim, slug)
    assert len(objects["users"]) == 1
    assert objects["tokens"] == [f"{slug}@pbs!backup"]
    assert len(objects["acl"]) == 3
    assert len(objects["namespaces"]) == 1
    assert len(objects["jobs"]) == 1


def test_a_lost_answer_is_retried_by_the_task_and_the_secret_is_renewed(
    pbs_sim: Any, https_host: Any, step_faults: Any
) -> None:
    tenant = _create(https_host, "lost")
    step_faults(pbs_sim).add("POST", r"/token/backup$", mode="lost", times=1)

    run, _ = services.tenant_onboard(tenant_id=tenant.pk)
    (run,) = wait_for_runs([run.pk], timeout=60)

    assert run.status == "succeeded", run.error
    assert run.attempts >= 2, "the Celery task retried"
    step = run.steps.get(name="backup_token")
    assert step.outcome == "regenerated"
    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    with _client_as(https_host, token.tokenid, decrypt_secret(token.secret_enc)) as client:
        assert client.permissions_get()


def test_concurrent_double_submit_makes_one_run(pbs_sim: Any, https_host: Any) -> None:
    tenant = _create(https_host, "twice")
    barrier = threading.Barrier(2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            barrier.wait()
            results.append(services.tenant_onboard(tenant_id=tenant.pk))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    runs = {run.pk for run, _created in results}
    assert len(runs) == 1
    assert sorted(created for _run, created in results) == [False, True]
    (run,) = wait_for_runs(list(runs))
    assert run.status == "succeeded"
    assert OnboardingRun.objects.filter(tenant=tenant).count() == 1
    assert len(_objects(pbs_sim, "twice")["users"]) == 1


@pytest.mark.slow
def test_bulk_of_200_with_ten_percent_5xx(pbs_sim: Any, https_host: Any) -> None:
    tenants = [_create(https_host, f"bulk{i:03d}") for i in range(200)]
    pbs_sim.faults = FaultConfig(error_rate=0.10, seed=11)
    try:
        runs = services.tenant_onboard_bulk(tenant_ids=[t.pk for t in tenants])
        finished = wait_for_runs([r.pk for r in runs], timeout=600)
    finally:
        pbs_sim.faults = FaultConfig()

    failures = [(r.tenant_id, r.error, r.error_hint) for r in finished if r.status != "succeeded"]
    assert not failures, failures
    assert Counter(r.status for r in finished) == {"succeeded": 200}
    assert set(Tenant.objects.values_list("status", flat=True)) == {"active"}
    assert_pbs_matches_portal(pbs_sim)
    assert not TenantToken.objects.filter(revoked_at__isnull=True, secret_enc="").exists()
