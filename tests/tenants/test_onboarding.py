"""Onboarding against the in-process simulator: steps, idempotence, faults, bulk."""

from __future__ import annotations

from typing import Any

import pytest

from audit.models import AuditEvent
from core.crypto import decrypt_secret
from tenants import services
from tenants.models import AclGrant, OnboardingRun, Tenant, TenantToken
from tenants.onboarding import ONBOARD_STEPS, RunResult, run_execute
from tests.tenants.conftest import pbs_state

pytestmark = pytest.mark.django_db


def _create(sim_host: Any, slug: str = "acme", **kwargs: Any) -> Tenant:
    store = sim_host.datastores.get(name="store1")
    return services.tenant_create(slug=slug, name=slug.title(), datastore=store, **kwargs)


def _onboard(tenant: Tenant, **kwargs: Any) -> OnboardingRun:
    run, created = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False, **kwargs)
    assert created
    return run


def _tenant_objects(sim: Any, slug: str) -> dict[str, Any]:
    state = pbs_state(sim)
    userid = f"{slug}@pbs"
    return {
        "users": [u for u in state["users"] if u["userid"] == userid],
        "tokens": [t for t in state["tokens"] if t["tokenid"].startswith(userid + "!")],
        "acl": sorted(
            (a["path"], a["ugid"], a["roleid"])
            for a in state["acl"]
            if a["ugid"] == userid or a["ugid"].startswith(userid + "!")
        ),
        "namespaces": [ns for ns in state["namespaces"]["store1"] if ns == f"clients/{slug}"],
        "prune_jobs": [j for j in state["prune_jobs"] if j["id"] == f"t-{slug}"],
    }


EXPECTED_ACL = [
    ("/datastore/store1/clients/acme", "acme@pbs", "DatastorePowerUser"),
    ("/datastore/store1/clients/acme", "acme@pbs", "DatastoreReader"),
    ("/datastore/store1/clients/acme", "acme@pbs!backup", "DatastoreBackup"),
]


def test_onboarding_creates_every_pbs_object_and_activates_the_tenant(pbs_sim: Any, sim_host: Any) -> None:
    tenant = _create(sim_host)
    run = _onboard(tenant)

    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED

    tenant.refresh_from_db()
    run.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE
    assert tenant.activated_at is not None
    assert run.status == OnboardingRun.Status.SUCCEEDED
    steps = list(run.steps.order_by("position"))
    assert [s.name for s in steps] == list(ONBOARD_STEPS)
    assert all(s.state == "done" for s in steps)
    assert [s.outcome for s in steps] == ["created"] * 6 + ["verified"]

    objects = _tenant_objects(pbs_sim, "acme")
    assert len(objects["users"]) == 1
    assert [t["tokenid"] for t in objects["tokens"]] == ["acme@pbs!backup"]
    assert objects["acl"] == EXPECTED_ACL
    assert objects["namespaces"] == ["clients/acme"]
    job = objects["prune_jobs"][0]
    assert (job["store"], job["ns"], job["keep-daily"], job["keep-weekly"], job["keep-monthly"]) == (
        "store1",
        "clients/acme",
        14,
        8,
        12,
    )
    assert "keep-last" not in job

    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    assert token.tokenid == "acme@pbs!backup"
    secret = decrypt_secret(token.secret_enc)
    assert len(secret) == 36  # a PBS token secret (UUID)
    assert token.effective_privileges["/datastore/store1/clients/acme"] == {"Datastore.Backup": True}
    assert set(tenant.user_privileges["/datastore/store1/clients/acme"]) == {
        "Datastore.Audit",
        "Datastore.Verify",
        "Datastore.Read",
        "Datastore.Backup",
        "Datastore.Prune",
    }
    assert sorted(AclGrant.objects.filter(tenant=tenant).values_list("path", "auth_id", "role")) == EXPECTED_ACL
    actions = list(AuditEvent.objects.filter(tenant=tenant).values_list("action", flat=True))
    for action in ("pbs.user.create", "pbs.namespace.create", "pbs.acl.grant", "pbs.token.create",
                   "pbs.prune_job.create", "tenant.onboard.finished"):  # fmt: skip
        assert action in actions
    # No secret anywhere in the audit trail.
    assert not AuditEvent.objects.filter(detail__icontains=secret).exists()
    assert not AuditEvent.objects.filter(target__icontains=secret).exists()


def test_a_second_run_finds_everything_done_and_changes_nothing(pbs_sim: Any, sim_host: Any) -> None:
    tenant = _create(sim_host)
    run_execute(run_id=_onboard(tenant).pk)
    before = _tenant_objects(pbs_sim, "acme")
    secret_before = TenantToken.objects.get(tenant=tenant).secret_enc

    repair, _ = services.tenant_repair(tenant_id=tenant.pk, enqueue=False)
    writes_before = sum(1 for m, _p, _s in pbs_sim.request_log if m != "GET")
    assert run_execute(run_id=repair.pk) is RunResult.SUCCEEDED
    writes_after = sum(1 for m, _p, _s in pbs_sim.request_log if m != "GET")

    assert writes_after == writes_before, "a converged tenant needs no PBS write"
    assert [s.outcome for s in repair.steps.order_by("position")] == ["existed"] * 6 + ["verified"]
    assert _tenant_objects(pbs_sim, "acme") == before
    assert TenantToken.objects.get(tenant=tenant).secret_enc == secret_before


def test_a_second_submit_returns_the_live_run(sim_host: Any) -> None:
    tenant = _create(sim_host)
    first, created_first = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    second, created_second = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    assert created_first
    assert not created_second
    assert first.pk == second.pk
    assert OnboardingRun.objects.filter(tenant=tenant).count() == 1


@pytest.mark.parametrize("step", ONBOARD_STEPS[:-1])
@pytest.mark.parametrize("mode", ["error", "lost"])
def test_a_transient_fault_at_any_step_is_retried_without_duplicates(
    pbs_sim: Any, sim_host: Any, step_faults: Any, step: str, mode: str
) -> None:
    """A 5xx before the write, or after it ("lost": PBS did it but the answer was lost),
    stops the step; the next attempt checks again and finishes with no duplicate."""
    write = {
        "user": ("POST", r"^/access/users$"),
        "namespace": ("POST", r"^/admin/datastore/store1/namespace$"),
        "user_acl": ("PUT", r"^/access/acl$"),
        "backup_token": ("POST", r"^/access/users/acme@pbs/token/backup$"),
        "token_acl": ("PUT", r"^/access/acl$"),
        "prune_job": ("POST", r"^/config/prune$"),
    }[step]
    tenant = _create(sim_host)
    run = _onboard(tenant)
    faults = step_faults(pbs_sim)
    # The token's ACL write is told apart from the user's by its body.
    body = r"pbs!backup" if step in ("token_acl",) else None
    # More than the client retries safe calls, for each of the user's two role grants (a
    # first onboarding of a run alone sends them at once).
    faults.add(*write, mode=mode, times=6, body=body)
    result = run_execute(run_id=run.pk)

    assert result is RunResult.RETRY
    failed_step = run.steps.get(name=step)
    assert failed_step.state == "pending"
    assert failed_step.last_error
    assert all(s.state == "done" for s in run.steps.filter(position__lt=failed_step.position))
    run.refresh_from_db()
    assert run.status == OnboardingRun.Status.RUNNING
    assert run.claimed_until is None

    faults.clear()
    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED
    objects = _tenant_objects(pbs_sim, "acme")
    assert len(objects["users"]) == 1
    assert len(objects["tokens"]) == 1
    assert objects["acl"] == EXPECTED_ACL
    assert len(objects["namespaces"]) == 1
    assert len(objects["prune_jobs"]) == 1
    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    assert token.secret_enc, "the portal holds a working secret"
    # The secret the portal holds works on PBS (a lost token answer was regenerated).
    from pbsclient import PbsClient

    with PbsClient(
        base_url=sim_host.url,
        token_id=token.tokenid,
        token_secret=decrypt_secret(token.secret_enc),
        transport=pbs_sim.transport(),
    ) as client:
        assert client.permissions_get()["/datastore/store1/clients/acme"] == {"Datastore.Backup": True}


def test_a_permanent_error_stops_the_run_with_a_hint(pbs_sim: Any, sim_host: Any, step_faults: Any) -> None:
    tenant = _create(sim_host)
    run = _onboard(tenant)
    step_faults(pbs_sim).add("POST", r"^/access/users$", mode="forbidden", times=1)

    assert run_execute(run_id=run.pk) is RunResult.FAILED

    run.refresh_from_db()
    tenant.refresh_from_db()
    assert run.status == OnboardingRun.Status.FAILED
    assert tenant.status == Tenant.Status.FAILED
    assert "permission check failed" in run.error
    assert "Permissions.Modify on /access/users" in run.error_hint
    assert "proxmox-backup-manager acl update /access Admin --auth-id root@pam!portal" in run.error_hint
    assert run.steps.get(name="user").state == "failed"

    # Retry (a new run) after the cause is fixed finishes the job.
    retry, created = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    assert created
    assert run_execute(run_id=retry.pk) is RunResult.SUCCEEDED
    tenant.refresh_from_db()
    assert tenant.status == Tenant.Status.ACTIVE


def test_a_transient_error_on_the_last_attempt_fails_the_run(pbs_sim: Any, sim_host: Any, step_faults: Any) -> None:
    tenant = _create(sim_host)
    run = _onboard(tenant)
    step_faults(pbs_sim).add("POST", r"^/config/prune$", mode="error", times=10)

    assert run_execute(run_id=run.pk, final_attempt=True) is RunResult.FAILED
    run.refresh_from_db()
    assert "Gave up after" in run.error_hint
    assert run.steps.get(name="prune_job").state == "failed"


def test_an_existing_foreign_user_is_not_taken_over(pbs_sim: Any, sim_host: Any) -> None:
    from tenants.pbs import client_for_host

    with client_for_host(sim_host) as client:
        client.user_create(userid="acme@pbs", comment="the MSP's own account")
    tenant = _create(sim_host)
    run = _onboard(tenant)

    assert run_execute(run_id=run.pk) is RunResult.FAILED
    run.refresh_from_db()
    assert "not made by the portal" in run.error
    assert "Pick another slug" in run.error_hint
    # Nothing was made next to someone else's user (the creates sent ahead wait for the user step).
    objects = _tenant_objects(pbs_sim, "acme")
    assert (objects["namespaces"], objects["prune_jobs"], objects["acl"]) == ([], [], [])


def test_a_lost_secret_is_regenerated_when_the_host_supports_it(pbs_sim: Any, sim_host: Any) -> None:
    tenant = _create(sim_host)
    run_execute(run_id=_onboard(tenant).pk)
    TenantToken.objects.filter(tenant=tenant).delete()  # the portal lost the row and its secret

    repair, _ = services.tenant_repair(tenant_id=tenant.pk, enqueue=False)
    assert run_execute(run_id=repair.pk) is RunResult.SUCCEEDED

    step = repair.steps.get(name="backup_token")
    assert step.outcome == "regenerated"
    token = TenantToken.objects.get(tenant=tenant, revoked_at__isnull=True)
    assert token.secret_enc
    assert _tenant_objects(pbs_sim, "acme")["acl"] == EXPECTED_ACL


def test_a_lost_secret_on_an_old_pbs_is_recreated_and_re_acled(pbs_sim: Any, sim_host: Any) -> None:
    tenant = _create(sim_host)
    run_execute(run_id=_onboard(tenant).pk)
    TenantToken.objects.filter(tenant=tenant).delete()
    sim_host.supports_regenerate = False
    sim_host.save(update_fields=["supports_regenerate"])

    repair, _ = services.tenant_repair(tenant_id=tenant.pk, enqueue=False)
    assert run_execute(run_id=repair.pk) is RunResult.SUCCEEDED

    assert repair.steps.get(name="backup_token").outcome == "recreated"
    assert repair.steps.get(name="token_acl").outcome == "created"
    assert _tenant_objects(pbs_sim, "acme")["acl"] == EXPECTED_ACL


def test_a_parent_namespace_made_by_another_worker_meanwhile_is_no_error(
    pbs_sim: Any, sim_host: Any, step_faults: Any
) -> None:
    """The child create fails because the parent is missing; before the step looks, another
    worker creates the parent. The step must simply create the child."""
    from tenants.pbs import client_for_host

    tenant = _create(sim_host)
    run = _onboard(tenant)
    faults = step_faults(pbs_sim)
    original = faults._original

    def racing(method: str, path: str, query: str, headers: Any, body: bytes) -> Any:
        reply = original(method, path, query, headers, body)
        if method == "POST" and path.endswith("/namespace") and reply[0] == 400:
            faults.sim.handle = original  # only once
            with client_for_host(sim_host) as client:
                client.namespace_create("store1", "clients")
        return reply

    pbs_sim.handle = racing
    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED
    assert run.steps.get(name="namespace").outcome == "created"


def test_an_acl_entry_left_by_an_earlier_user_of_that_name_is_converged_after_the_proof(
    pbs_sim: Any, sim_host: Any
) -> None:
    """PBS keeps a deleted user's own ACL entries. A first onboarding grants its roles
    without reading the ACL; the proof finds the leftover role, the step converges with a
    read (removing it) and proves again."""
    from tenants.pbs import client_for_host

    path = "/datastore/store1/clients/acme"
    with client_for_host(sim_host) as client:
        client.user_create(userid="acme@pbs", comment="an earlier tenant")
        client.acl_update(path=path, role="DatastoreAdmin", auth_id="acme@pbs")
        client.user_delete("acme@pbs")
    tenant = _create(sim_host)
    run = _onboard(tenant)

    assert run_execute(run_id=run.pk) is RunResult.SUCCEEDED

    assert _tenant_objects(pbs_sim, "acme")["acl"] == EXPECTED_ACL
    verify = run.steps.get(name="verify")
    assert verify.outcome == "verified"
    assert "converged the ACL with a read" in verify.detail
    tenant.refresh_from_db()
    assert set(tenant.user_privileges[path]) == {
        "Datastore.Audit", "Datastore.Verify", "Datastore.Read", "Datastore.Backup", "Datastore.Prune",
    }  # fmt: skip
    assert sorted(AclGrant.objects.filter(tenant=tenant).values_list("path", "auth_id", "role")) == EXPECTED_ACL


def test_a_token_acl_outside_the_namespace_still_fails_the_proof(pbs_sim: Any, sim_host: Any, step_faults: Any) -> None:
    """The token's privileges are derived from the user's only when this execution made the
    token; a token that already existed (an earlier run made it) is asked about on PBS."""
    from tenants.pbs import client_for_host

    tenant = _create(sim_host)
    run = _onboard(tenant)
    faults = step_faults(pbs_sim)
    faults.add("POST", r"^/config/prune$", mode="error", times=20)
    assert run_execute(run_id=run.pk, final_attempt=True) is RunResult.FAILED
    with client_for_host(sim_host) as client:  # someone widens the token meanwhile
        client.acl_update(path="/datastore/store1", role="DatastoreBackup", auth_id="acme@pbs!backup")
        client.acl_update(path="/datastore/store1", role="DatastoreBackup", auth_id="acme@pbs")
    faults.clear()
    again, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)

    assert run_execute(run_id=again.pk) is RunResult.FAILED
    again.refresh_from_db()
    assert "acme@pbs!backup has Datastore.Backup outside its namespace" in again.error


def test_creates_sent_ahead_are_recorded_when_an_earlier_step_fails(
    pbs_sim: Any, sim_host: Any, step_faults: Any
) -> None:
    """A first onboarding sends the namespace and prune job creates once the user is made,
    next to the ACL writes. If the user's ACL then fails for good, what PBS made anyway is
    recorded as its steps would (done, audited), and a new run finishes the rest."""
    tenant = _create(sim_host)
    run = _onboard(tenant)
    step_faults(pbs_sim).add("PUT", r"^/access/acl$", mode="forbidden", times=1)

    assert run_execute(run_id=run.pk) is RunResult.FAILED

    states = {s.name: (s.state, s.outcome) for s in run.steps.all()}
    assert states["user"] == ("done", "created")
    assert states["user_acl"][0] == "failed"
    assert states["namespace"] == ("done", "created")
    assert states["prune_job"] == ("done", "created")
    assert states["backup_token"][0] == states["token_acl"][0] == states["verify"][0] == "pending"
    actions = set(AuditEvent.objects.filter(tenant=tenant).values_list("action", flat=True))
    assert {"pbs.user.create", "pbs.namespace.create", "pbs.prune_job.create"} <= actions
    objects = _tenant_objects(pbs_sim, "acme")
    assert len(objects["namespaces"]) == len(objects["prune_jobs"]) == 1

    again, _ = services.tenant_onboard(tenant_id=tenant.pk, enqueue=False)
    assert run_execute(run_id=again.pk) is RunResult.SUCCEEDED
    objects = _tenant_objects(pbs_sim, "acme")
    assert objects["acl"] == EXPECTED_ACL
    assert len(objects["namespaces"]) == len(objects["prune_jobs"]) == len(objects["tokens"]) == 1
